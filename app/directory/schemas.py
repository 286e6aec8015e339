"""Directory input and output shapes."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator

from app.validators import (
    Department,
    Email,
    Finess,
    InseeCode,
    Latitude,
    Longitude,
    Name,
    OutModel,
    Phone,
    PostalCode,
    Rpps,
    Siret,
    StrictModel,
    Text300,
    TimeZoneName,
    WallClockOut,
)

Role = Literal["admin", "coordinator", "practice", "regulator", "dashboard", "sas_platform"]
Profession = Literal["general_practitioner", "pediatrician", "nurse", "midwife", "other"]
Gender = Literal["female", "male", "other"]


def _no_nulls(model: StrictModel, *fields: str) -> None:
    """PATCH bodies may omit a required field but may not set it to null."""
    for name in fields:
        if name in model.model_fields_set and getattr(model, name) is None:
            raise ValueError(f"{name} cannot be null")


# Territories ------------------------------------------------------------------------------


class TerritoryIn(StrictModel):
    name: Name
    timezone: TimeZoneName = Field(examples=["Europe/Paris"])
    department: Department
    population: int | None = Field(default=None, ge=0, le=100_000_000)
    aci_signed_on: date | None = Field(
        default=None,
        description="Signature date of the territory's ACI contract: starts each indicator year",
    )
    finess: Finess | None = None
    phone: Phone | None = None
    snp_window_hours: int = Field(
        default=48, ge=1, le=720, description="How far ahead a surnuméraire may be booked"
    )
    coordinator_emails: list[Email] = Field(
        default_factory=list,
        max_length=20,
        description="The coordinators' addresses: the service's reminders (the crisis plan's "
        "yearly review) go there",
    )


class TerritoryPatch(StrictModel):
    name: Name | None = None
    timezone: TimeZoneName | None = None
    department: Department | None = None
    population: int | None = Field(default=None, ge=0, le=100_000_000)
    aci_signed_on: date | None = Field(
        default=None,
        description="Signature date of the territory's ACI contract: starts each indicator year",
    )
    finess: Finess | None = None
    phone: Phone | None = None
    snp_window_hours: int | None = Field(default=None, ge=1, le=720)
    coordinator_emails: list[Email] | None = Field(default=None, max_length=20)

    @model_validator(mode="after")
    def _required_not_null(self) -> TerritoryPatch:
        _no_nulls(self, "name", "timezone", "department", "snp_window_hours", "coordinator_emails")
        return self


class TerritoryOut(OutModel):
    id: uuid.UUID
    name: str
    timezone: str
    department: str
    population: int | None
    aci_signed_on: date | None = None
    finess: str | None
    phone: str | None
    snp_window_hours: int
    coordinator_emails: list[str] = Field(default_factory=list)
    created_at: datetime
    # Whether the national SAS platform can be sent this territory (app/directory/readiness.py)
    sas_ready: bool = False
    sas_not_ready_reasons: list[str] = Field(default_factory=list)


# Regulators (SAS) -----------------------------------------------------------------------


class RegulatorIn(StrictModel):
    name: Name
    department: Department


class RegulatorPatch(StrictModel):
    name: Name | None = None
    department: Department | None = None

    @model_validator(mode="after")
    def _required_not_null(self) -> RegulatorPatch:
        _no_nulls(self, "name", "department")
        return self


class RegulatorOut(OutModel):
    id: uuid.UUID
    name: str
    department: str
    territory_ids: list[uuid.UUID] = Field(default_factory=list)
    created_at: datetime


class RegulatorLinkIn(StrictModel):
    regulator_id: uuid.UUID


# Practices ------------------------------------------------------------------------------

CabinetId = Annotated[
    str,
    StringConstraints(pattern=r"^(4[0-9]{12,15}|0[0-9]{2}[0-9AB][0-9]{7,12})$"),
    Field(
        description="A private practice's RPPS rang (prefix 4) or ADELI rang (prefix 0), with its "
        "prefix, as the Annuaire Santé's 'ancien identifiant de la structure'",
        examples=["41000123456701"],
    ),
]


def _check_booking_url(value: str) -> str:
    parsed = urlsplit(value)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise ValueError("must be an absolute http(s) URL")
    return value


BookingUrl = Annotated[
    str,
    StringConstraints(max_length=500),
    AfterValidator(_check_booking_url),
    Field(description="The practice's own public booking page (an absolute URL)"),
]


class PracticeIn(StrictModel):
    territory_id: uuid.UUID
    name: Name
    address: Text300
    commune_insee: InseeCode
    lat: Latitude
    lon: Longitude
    finess: Finess | None = None
    postal_code: PostalCode | None = None
    city: Name | None = None
    phone: Phone | None = None
    siret: Siret | None = None
    cabinet_id: CabinetId | None = None
    booking_url: BookingUrl | None = None


class PracticePatch(StrictModel):
    name: Name | None = None
    address: Text300 | None = None
    commune_insee: InseeCode | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    finess: Finess | None = None
    postal_code: PostalCode | None = None
    city: Name | None = None
    phone: Phone | None = None
    siret: Siret | None = None
    cabinet_id: CabinetId | None = None
    booking_url: BookingUrl | None = None

    @model_validator(mode="after")
    def _required_not_null(self) -> PracticePatch:
        _no_nulls(self, "name", "address", "commune_insee", "lat", "lon")
        return self


class TerritoryStamped(OutModel):
    """Output of a resource that belongs to a territory; `created_at` is shown in its zone."""

    territory_id: uuid.UUID
    created_at: datetime


class PracticeOut(TerritoryStamped):
    id: uuid.UUID
    name: str
    address: str
    commune_insee: str
    commune_name: str | None = Field(default=None, description="The commune's name (referential)")
    lat: float
    lon: float
    finess: str | None
    postal_code: str | None
    city: str | None
    phone: str | None
    siret: str | None
    cabinet_id: str | None = None
    booking_url: str | None = None


# Practitioners --------------------------------------------------------------------------

OverbookingModality = Literal["cabinet", "visite", "teleconsultation"]
_HOURS_DOC = (
    "Local wall-clock time of the surnuméraire hours; an end at or before the start is the next day"
)


def _wall_clock(value: time | None) -> time | None:
    if value is not None and (value.tzinfo is not None or value.second or value.microsecond):
        raise ValueError("a local wall-clock time HH:MM without offset, e.g. 08:00")
    return value


def _unique(value: list[str] | None) -> list[str] | None:
    return None if value is None else sorted(set(value))


class PractitionerIn(StrictModel):
    practice_id: uuid.UUID
    rpps: Rpps
    family_name: Name
    given_name: Name
    gender: Gender | None = None
    profession: Profession = "general_practitioner"
    specialty: Name | None = None
    accepts_overbooking: bool = False
    overbooking_daily_cap: int = Field(default=0, ge=0, le=50)
    overbooking_start_time: time = Field(default=time(8), description=_HOURS_DOC)
    overbooking_end_time: time = Field(default=time(20), description=_HOURS_DOC)
    overbooking_modalities: list[OverbookingModality] | None = Field(
        default=None,
        max_length=3,
        description="Modalities accepted as surnuméraire; null: those of the practitioner's rules",
    )
    mt_capacity: int = Field(default=0, ge=0, le=5000)

    _check_times = field_validator("overbooking_start_time", "overbooking_end_time")(_wall_clock)
    _dedupe = field_validator("overbooking_modalities")(_unique)


class PractitionerPatch(StrictModel):
    practice_id: uuid.UUID | None = None
    rpps: Rpps | None = None
    family_name: Name | None = None
    given_name: Name | None = None
    gender: Gender | None = None
    profession: Profession | None = None
    specialty: Name | None = None
    accepts_overbooking: bool | None = None
    overbooking_daily_cap: int | None = Field(default=None, ge=0, le=50)
    overbooking_start_time: time | None = Field(default=None, description=_HOURS_DOC)
    overbooking_end_time: time | None = Field(default=None, description=_HOURS_DOC)
    overbooking_modalities: list[OverbookingModality] | None = Field(default=None, max_length=3)
    mt_capacity: int | None = Field(default=None, ge=0, le=5000)

    _check_times = field_validator("overbooking_start_time", "overbooking_end_time")(_wall_clock)
    _dedupe = field_validator("overbooking_modalities")(_unique)

    @model_validator(mode="after")
    def _required_not_null(self) -> PractitionerPatch:
        _no_nulls(
            self,
            "practice_id",
            "rpps",
            "family_name",
            "given_name",
            "profession",
            "accepts_overbooking",
            "overbooking_daily_cap",
            "overbooking_start_time",
            "overbooking_end_time",
            "mt_capacity",
        )
        return self


class PractitionerOut(TerritoryStamped):
    id: uuid.UUID
    practice_id: uuid.UUID
    rpps: str
    family_name: str
    given_name: str
    gender: str | None
    profession: str
    specialty: str | None
    accepts_overbooking: bool
    overbooking_daily_cap: int
    overbooking_start_time: WallClockOut
    overbooking_end_time: WallClockOut
    overbooking_modalities: list[str] | None
    mt_capacity: int


class MtCapacityIn(StrictModel):
    mt_capacity: int = Field(ge=0, le=5000)


# API keys -------------------------------------------------------------------------------


class KeyIn(StrictModel):
    role: Role
    name: Name
    territory_id: uuid.UUID | None = None
    practice_id: uuid.UUID | None = None
    regulator_id: uuid.UUID | None = None


class KeyOut(OutModel):
    id: uuid.UUID
    name: str
    role: str
    prefix: str
    territory_id: uuid.UUID | None
    practice_id: uuid.UUID | None
    regulator_id: uuid.UUID | None
    created_at: datetime
    revoked_at: datetime | None
    created_by: uuid.UUID | None = Field(
        default=None, description="The key that minted this one (null: the CLI)"
    )
    minted_by_admin: bool = Field(
        default=False,
        description="Minted by an admin key or the CLI (an instance operator), not by the "
        "territory's coordinator",
    )


class KeyCreated(KeyOut):
    key: str = Field(description="The secret, shown this once; only its digest is stored")
