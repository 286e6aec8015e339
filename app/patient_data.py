"""The minimum patient data Créneau keeps (bookings, MT requests): one set of columns, one
way in (PatientIn) and one way out (PatientOut), so that retention and visibility rules apply
the same everywhere. The retention purge is app.retention's."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints
from sqlalchemy import Date, String
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import now_utc
from app.validators import E164Phone, InseeCode, Name, OutModel, StrictModel

PATIENT_FIELDS = (
    "patient_family_name",
    "patient_given_name",
    "patient_birth_date",
    "patient_phone",
    "patient_ins",
    "patient_commune_insee",
)


_INS_PATTERN = r"^[1-478][0-9]{4}(?:[0-9]{2}|2A|2B)[0-9]{6}[0-9]{2}$"


def _check_ins(value: str) -> str:
    """The INS matricule is the 13-character NIR and its 2-digit key (97 - NIR mod 97);
    Corsica's 2A/2B count as 19/18 in the key."""
    body = value[:13].replace("2A", "19").replace("2B", "18")
    if 97 - int(body) % 97 != int(value[13:]):
        raise ValueError("the INS key (last 2 digits) does not match")
    return value


def _check_birth_date(value: date) -> date:
    if value > now_utc().date():
        raise ValueError("must not be in the future")
    if value < date(1900, 1, 1):
        raise ValueError("must be after 1900-01-01")
    return value


Ins = Annotated[
    str,
    StringConstraints(pattern=_INS_PATTERN),
    AfterValidator(_check_ins),
    Field(description="INS matricule: 15 characters (NIR + key)", examples=["180017512345603"]),
]


class PatientIn(StrictModel):
    family_name: Name
    given_name: Name
    birth_date: Annotated[date, AfterValidator(_check_birth_date)]
    phone: E164Phone
    ins: Ins | None = None
    commune_insee: InseeCode | None = None


class PatientOut(OutModel):
    family_name: str
    given_name: str
    birth_date: date
    phone: str
    ins: str | None
    commune_insee: str | None
    commune_name: str | None = Field(default=None, description="The commune's name (referential)")


class PatientColumns:
    """Nullable: erased by the retention job once the booking or request is closed."""

    patient_family_name: Mapped[str | None] = mapped_column(String(200))
    patient_given_name: Mapped[str | None] = mapped_column(String(200))
    patient_birth_date: Mapped[date | None] = mapped_column(Date)
    patient_phone: Mapped[str | None] = mapped_column(String(20))
    patient_ins: Mapped[str | None] = mapped_column(String(15))
    patient_commune_insee: Mapped[str | None] = mapped_column(String(5))


def patient_columns(patient: PatientIn) -> dict[str, Any]:
    return {
        "patient_family_name": patient.family_name,
        "patient_given_name": patient.given_name,
        "patient_birth_date": patient.birth_date,
        "patient_phone": patient.phone,
        "patient_ins": patient.ins,
        "patient_commune_insee": patient.commune_insee,
    }


def empty_patient_columns() -> dict[str, Any]:
    return dict.fromkeys(PATIENT_FIELDS)


def patient_out(row: PatientColumns, *, visible: bool) -> PatientOut | None:
    """The patient as the API shows them, or None when hidden or erased."""
    if not visible or row.patient_family_name is None:
        return None
    assert row.patient_given_name and row.patient_birth_date and row.patient_phone
    return PatientOut(
        family_name=row.patient_family_name,
        given_name=row.patient_given_name,
        birth_date=row.patient_birth_date,
        phone=row.patient_phone,
        ins=row.patient_ins,
        commune_insee=row.patient_commune_insee,
    )
