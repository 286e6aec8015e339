"""The minimum patient data Créneau keeps (bookings, MT requests): one set of columns, one
way in and one way out, so that retention and visibility rules apply the same everywhere."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Date, String
from sqlalchemy.orm import Mapped, mapped_column

from app.scheduling.booking_schemas import PatientIn, PatientOut


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
