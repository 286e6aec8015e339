"""Booking input and output shapes, and the validation of patient data."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field, model_validator

from app.bounds import BoundedDatetime
from app.patient_data import PatientIn, PatientOut
from app.scheduling.schemas import Modality
from app.validators import OutModel, StrictModel

_VISIT_DOC = "Where a home visit (a `visite` slot) takes place, shown with the patient"


class Operator(StrictModel):
    system: str = Field(min_length=1, max_length=200)
    value: str = Field(min_length=1, max_length=200)


class BookingIn(StrictModel):
    slot_id: uuid.UUID
    operator: Operator | None = Field(
        default=None, description="The SAS platform account that books (sent to the platform)"
    )
    patient: PatientIn | None = None
    sas_case_ref: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=300)
    visit_address: str | None = Field(
        default=None, min_length=5, max_length=300, description=_VISIT_DOC
    )
    hold: bool = False

    @model_validator(mode="after")
    def _patient_unless_hold(self) -> BookingIn:
        if not self.hold and self.patient is None:
            raise ValueError("patient is required unless hold is true")
        return self


class ConfirmIn(StrictModel):
    patient: PatientIn | None = Field(
        default=None, description="Needed only when the hold was made without the patient"
    )
    operator: Operator | None = None
    sas_case_ref: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=300)
    visit_address: str | None = Field(
        default=None, min_length=5, max_length=300, description=_VISIT_DOC
    )


class CancelIn(StrictModel):
    reason: str = Field(min_length=1, max_length=300)


class OutcomeIn(StrictModel):
    outcome: Literal["honored", "no_show"]


class OverbookIn(StrictModel):
    practitioner_id: uuid.UUID
    start: BoundedDatetime
    end: BoundedDatetime | None = Field(default=None, description="Default: start + 15 minutes")
    modality: Modality = "cabinet"
    patient: PatientIn
    operator: Operator | None = None
    sas_case_ref: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=300)
    visit_address: str | None = Field(
        default=None,
        min_length=5,
        max_length=300,
        description="Where the home visit takes place: required with modality `visite`",
    )

    @model_validator(mode="after")
    def _period(self) -> OverbookIn:
        if self.modality == "visite" and not (self.visit_address or "").strip():
            raise ValueError("a home visit (modality visite) needs the visit_address")
        if self.modality != "visite" and self.visit_address is not None:
            raise ValueError("visit_address is only for a home visit (modality visite)")
        if self.end is None:
            self.end = self.start + timedelta(minutes=15)
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > timedelta(hours=2):
            raise ValueError("a consultation lasts at most 2 hours")
        return self


class BookingSlotOut(OutModel):
    id: uuid.UUID
    start: datetime
    end: datetime
    modality: str


class BookingPractitionerOut(OutModel):
    id: uuid.UUID
    family_name: str
    given_name: str
    rpps: str


class BookingPracticeOut(OutModel):
    id: uuid.UUID
    name: str
    address: str  # the street address; the postal code and the town beside it
    postal_code: str | None
    city: str | None
    phone: str | None


class BookingOut(OutModel):
    id: uuid.UUID
    status: str
    slot: BookingSlotOut | None
    start: datetime
    end: datetime
    modality: str
    overbooked: bool
    practitioner: BookingPractitionerOut
    practice: BookingPracticeOut
    territory_id: uuid.UUID
    regulator_id: uuid.UUID | None
    patient: PatientOut | None = Field(
        description="Only for the booking SAS, the slot's practice and the coordinator"
    )
    sas_case_ref: str | None
    reason: str | None
    visit_address: str | None = Field(
        default=None, description="A home visit's address, shown with the patient"
    )
    hold_expires_at: datetime | None
    created_at: datetime
    booked_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    outcome_at: datetime | None
