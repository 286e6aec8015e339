"""Unmet SNP requests in and out."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from app.validators import InseeCode, Latitude, Longitude, OutModel, StrictModel

Reason = Literal[
    "no_slot",
    "no_suitable_slot",
    "too_far",
    "too_late",
    "modality_unavailable",
    "patient_refused",
    "other",
]
Modality = Literal["cabinet", "visite", "teleconsultation"]
Kind = Literal["declared", "empty_search"]
CaseRef = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00]*$")]


class Point(StrictModel):
    lat: Latitude
    lon: Longitude


class UnmetRequestIn(StrictModel):
    """A SAS request that could not be placed. Exactly one of `commune_insee` (where the
    patient is) and `near` (a point); the territory is derived from it among the regulator's
    territories, or given as `territory_id` when it cannot be (a commune no practice of the
    regulator's territories is in, for a SAS serving several)."""

    commune_insee: InseeCode | None = None
    near: Point | None = None
    territory_id: uuid.UUID | None = None
    modality: Modality | None = None
    wanted_within_hours: Annotated[
        int | None, Field(ge=1, le=720, description="Within how many hours care was needed")
    ] = None
    reason: Reason = Field(
        description="no_slot, no_suitable_slot, too_far, too_late, modality_unavailable, "
        "patient_refused or other"
    )
    sas_case_ref: CaseRef | None = None

    @model_validator(mode="after")
    def _one_place(self) -> UnmetRequestIn:
        if (self.commune_insee is None) == (self.near is None):
            raise ValueError("give exactly one of commune_insee and near")
        return self


class UnmetRequestOut(OutModel):
    id: uuid.UUID
    territory_id: uuid.UUID
    regulator_id: uuid.UUID | None
    kind: Kind
    recorded_at: datetime
    commune_insee: str | None
    commune_name: str | None = Field(default=None, description="The commune's name (referential)")
    near: Point | None
    modality: Modality | None
    wanted_within_hours: int | None
    reason: Reason
    sas_case_ref: str | None


class UnmetSummary(OutModel):
    """The unmet-demand figures of a territory over a period (docs/indicators.md)."""

    territory_id: uuid.UUID
    start: datetime
    end: datetime
    sas_requests: int
    placed: int
    placed_slots: int
    placed_overbooked: int
    placed_within_48h: int
    unmet: int
    share_placed: float | None
    share_placed_within_48h: float | None
    empty_searches: int
    slots_offered: int
    unmet_by_reason: dict[str, int]
    unmet_by_commune: dict[str, int]
    unmet_by_hour: dict[str, int]


class GapCell(OutModel):
    """Offer and demand in one commune at one local hour of the week."""

    commune_insee: str
    commune_name: str | None = Field(default=None, description="The commune's name (referential)")
    day_of_week: int = Field(description="ISO day of week: 1 = Monday … 7 = Sunday")
    hour: int = Field(description="Local hour, 0..23")
    slots_offered: int
    placed: int
    placed_overbooked: int
    unmet: int
    empty_searches: int
    demand: int


class FloorIn(StrictModel):
    floor: int = Field(ge=0, le=100_000, description="Free SAS slots under which GPs are called")
    window_hours: int = Field(default=48, ge=1, le=168, description="The window counted ahead")


class FloorOut(OutModel):
    territory_id: uuid.UUID
    floor: int
    window_hours: int


CommuneTyped = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=120, pattern=r"^[^\x00]*$"),
]


class AreaFloorIn(StrictModel):
    """A group of communes' floor. Each commune as an INSEE code, a postal code, a name or
    "Name (postal code)"; an unknown or ambiguous one is a 422 on its item."""

    communes: list[CommuneTyped] = Field(min_length=1, max_length=500)
    floor: int = Field(ge=0, le=100_000, description="Free SAS slots under which GPs are called")
    window_hours: int = Field(default=48, ge=1, le=168, description="The window counted ahead")


class AreaCommune(OutModel):
    commune_insee: str
    commune_name: str | None = Field(default=None, description="The commune's name (referential)")


class AreaFloorOut(OutModel):
    id: uuid.UUID
    territory_id: uuid.UUID
    name: str
    communes: list[AreaCommune]
    floor: int
    window_hours: int
    updated_at: datetime


class OptInIn(StrictModel):
    email: Annotated[
        str, StringConstraints(min_length=3, max_length=254, pattern=r"^[^@\s\x00]+@[^@\s\x00]+$")
    ]


class SlotCallOut(OutModel):
    id: uuid.UUID
    practitioner_id: uuid.UUID
    area_id: uuid.UUID | None = Field(
        description="The group of communes called for; null: the territory"
    )
    area: str | None = Field(description="The group's name; null: the territory's floor")
    day: date
    sent_at: datetime
    free_slots: int
    floor: int
    mail_status: Literal["pending", "sent", "failed"]
    slots_published_within_24h: int


class RunOut(OutModel):
    calls: int
