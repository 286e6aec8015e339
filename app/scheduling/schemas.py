"""Scheduling input and output shapes."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from app.bounds import BoundedDate, BoundedDatetime
from app.validators import OutModel, StrictModel, WallClockOut

Modality = Literal["cabinet", "visite", "teleconsultation"]
Visibility = Literal["sas", "cpts", "public"]
MAX_ONE_OFF = timedelta(hours=12)


def _wall_clock(value: time | None) -> time | None:
    if value is not None and value.tzinfo is not None:
        raise ValueError("a local wall-clock time without offset, e.g. 17:00")
    return value


class RuleIn(StrictModel):
    rrule: str = Field(
        min_length=7,
        max_length=500,
        description="RFC 5545 RRULE without DTSTART",
        examples=["FREQ=WEEKLY;BYDAY=MO,TU,TH"],
    )
    start_time: time = Field(description="Local wall-clock time", examples=["17:00"])
    end_time: time = Field(
        description="Local wall-clock time; at or before start_time means the next day",
        examples=["19:00"],
    )
    slot_minutes: int = Field(ge=5, le=720, examples=[15])
    modality: Modality
    visibility: Visibility
    valid_from: BoundedDate
    valid_until: BoundedDate | None = None

    _check_times = field_validator("start_time", "end_time")(_wall_clock)


class RulePatch(StrictModel):
    rrule: str | None = Field(default=None, min_length=7, max_length=500)
    start_time: time | None = None
    end_time: time | None = None
    slot_minutes: int | None = Field(default=None, ge=5, le=720)
    modality: Modality | None = None
    visibility: Visibility | None = None
    valid_from: BoundedDate | None = None
    valid_until: BoundedDate | None = None

    _check_times = field_validator("start_time", "end_time")(_wall_clock)

    @model_validator(mode="after")
    def _required_not_null(self) -> RulePatch:
        for name in self.model_fields_set - {"valid_until"}:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class RuleOut(OutModel):
    id: uuid.UUID
    practitioner_id: uuid.UUID
    rrule: str
    start_time: WallClockOut
    end_time: WallClockOut
    slot_minutes: int
    modality: str
    visibility: str
    valid_from: date
    valid_until: date | None
    materialized_until: datetime | None
    created_at: datetime


class MaterializationOut(StrictModel):
    created: int = Field(description="Slots created now")
    removed: int = Field(default=0, description="Free slots removed (rule edited or deleted)")
    kept: int = Field(default=0, description="Held or booked slots left untouched")


class RuleCreated(RuleOut):
    slots: MaterializationOut


class OneOffSlotIn(StrictModel):
    start: BoundedDatetime
    end: BoundedDatetime
    modality: Modality
    visibility: Visibility
    crisis_id: uuid.UUID | None = Field(
        default=None,
        description="Crisis capacity: the crisis running in the practitioner's territory "
        "(the SAS finds the slot first); the slot must be visible to the SAS",
    )

    @model_validator(mode="after")
    def _period(self) -> OneOffSlotIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > MAX_ONE_OFF:
            raise ValueError("a slot lasts at most 12 hours")
        return self


class SlotOut(OutModel):
    id: uuid.UUID
    practitioner_id: uuid.UUID
    rule_id: uuid.UUID | None
    source: str
    start: datetime
    end: datetime
    modality: str
    visibility: str
    status: str
    # The crisis this slot was opened for (app.crisis), None for ordinary capacity.
    crisis_id: uuid.UUID | None = None


class UnavailabilityIn(StrictModel):
    start: BoundedDatetime
    end: BoundedDatetime
    reason: str | None = Field(default=None, max_length=300)

    @model_validator(mode="after")
    def _period(self) -> UnavailabilityIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > timedelta(days=366):
            raise ValueError("an unavailability lasts at most a year")
        return self


class ConflictOut(OutModel):
    slot_id: uuid.UUID | None = Field(description="None for a surnuméraire (see booking_id)")
    start: datetime
    end: datetime
    status: str
    booking_id: uuid.UUID | None = None


class UnavailabilityOut(OutModel):
    id: uuid.UUID
    practitioner_id: uuid.UUID
    start: datetime
    end: datetime
    reason: str | None
    slots_made_unavailable: int = 0
    conflicts: list[ConflictOut] = Field(default_factory=list)
    created_at: datetime


class SearchPractitioner(OutModel):
    id: uuid.UUID
    family_name: str
    given_name: str
    rpps: str


class SearchPractice(OutModel):
    id: uuid.UUID
    name: str
    address: str
    commune_insee: str
    commune_name: str | None = Field(default=None, description="The commune's name (referential)")
    lat: float
    lon: float


class SlotSearchItem(OutModel):
    id: uuid.UUID
    start: datetime
    end: datetime
    modality: str
    visibility: str
    status: str
    practitioner: SearchPractitioner
    practice: SearchPractice
    distance_km: float | None = None
    # The crisis this slot was opened for; a running crisis' slots come first in the search.
    crisis_id: uuid.UUID | None = None
