"""The plan's document, as the coordinator writes it and the ARS reads it (JSON)."""

from __future__ import annotations

import uuid
from datetime import time
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from app.bounds import BoundedDate
from app.validators import Email, InseeCode, Name, Phone, StrictModel, Text300

Modality = Literal["cabinet", "visite", "teleconsultation"]
Weekday = Annotated[int, Field(ge=1, le=7)]  # ISO: 1 = Monday … 7 = Sunday
LongText = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")]


class Contact(StrictModel):
    """Who to call, in the order of the list, for a role (ARS, SAS, coordinator, town hall…)."""

    role: Name
    name: Name
    phone: Phone
    email: Email | None = None


class Pledge(StrictModel):
    """Capacity a volunteer GP can open in a crisis: extra SNP hours of one modality on some
    days, cut into slots (the surge rule its call's link prefills)."""

    modality: Modality
    weekdays: list[Weekday] = Field(min_length=1, max_length=7)
    start_time: time
    end_time: time
    slot_minutes: int = Field(default=20, ge=5, le=120)

    @model_validator(mode="after")
    def _hours(self) -> Pledge:
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        if len(set(self.weekdays)) != len(self.weekdays):
            raise ValueError("weekdays must not repeat")
        return self


class Volunteer(StrictModel):
    """A GP of the territory who volunteers, where to reach them, what they pledge; the
    surnuméraire cap to set during a crisis when the plan raises caps (None: unchanged)."""

    practitioner_id: uuid.UUID
    email: Email | None = None
    pledges: list[Pledge] = Field(default_factory=list, max_length=10)
    crisis_overbooking_cap: int | None = Field(default=None, ge=0, le=50)


class Site(StrictModel):
    """A place that can host a temporary consultation."""

    name: Name
    address: Text300
    commune_insee: InseeCode
    capacity: Text300 | None = None  # rooms, hours, equipment, in words


class Step(StrictModel):
    title: Name
    detail: LongText | None = None
    who: Name | None = None  # the role that carries it out


class PlanDocument(StrictModel):
    """A version of the plan. `raise_overbooking_caps`: declaring a crisis sets each
    volunteer's surnuméraire cap to its `crisis_overbooking_cap` (restored when it ends)."""

    reviewed_on: BoundedDate
    contacts: list[Contact] = Field(default_factory=list, max_length=50)
    volunteers: list[Volunteer] = Field(default_factory=list, max_length=500)
    sites: list[Site] = Field(default_factory=list, max_length=50)
    steps: list[Step] = Field(default_factory=list, max_length=50)
    raise_overbooking_caps: bool = False

    @model_validator(mode="after")
    def _one_entry_per_volunteer(self) -> PlanDocument:
        ids = [v.practitioner_id for v in self.volunteers]
        if len(set(ids)) != len(ids):
            raise ValueError("a practitioner is listed twice among the volunteers")
        return self
