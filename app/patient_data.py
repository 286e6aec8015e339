"""The minimum patient data Créneau keeps (bookings, MT requests): one set of columns, one
way in and one way out, so that retention and visibility rules apply the same everywhere."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, String, func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.activity.service import record
from app.config import get_settings
from app.scheduling.booking_schemas import PatientIn, PatientOut

PATIENT_FIELDS = (
    "patient_family_name",
    "patient_given_name",
    "patient_birth_date",
    "patient_phone",
    "patient_ins",
    "patient_commune_insee",
)


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


async def purge_expired(session: AsyncSession, *, now: datetime | None = None) -> dict[str, int]:
    """Job: erase the patient data of bookings and MT requests closed for longer than the
    configured retention. Indicators do not change: they read the activity log only."""
    from app.medecin_traitant.models import MtProposal, MtRequest
    from app.scheduling.booking_models import Booking

    settings = get_settings()
    now = now or datetime.now(UTC)
    erased = dict.fromkeys(PATIENT_FIELDS)
    booking_closed = func.coalesce(Booking.outcome_at, Booking.cancelled_at, Booking.end)
    bookings = await session.execute(
        update(Booking)
        .where(
            Booking.patient_family_name.is_not(None),
            Booking.status.in_(("cancelled", "expired", "honored", "no_show", "booked")),
            booking_closed < now - timedelta(days=settings.booking_retention_days),
        )
        .values(**erased, visit_address=None)
        .execution_options(synchronize_session=False)
    )
    request_closed = func.coalesce(MtRequest.attached_at, MtRequest.withdrawn_at)
    requests = await session.execute(
        update(MtRequest)
        .where(
            MtRequest.patient_family_name.is_not(None),
            MtRequest.status.in_(("attached", "withdrawn")),
            request_closed < now - timedelta(days=settings.mt_request_retention_days),
        )
        .values(**erased, contact_email=None)
        .execution_options(synchronize_session=False)
    )
    # A decline's reason is free text about the patient: erased with the request's data.
    await session.execute(
        update(MtProposal)
        .where(
            MtProposal.request_id == MtRequest.id,
            MtRequest.patient_family_name.is_(None),
            MtProposal.reason.is_not(None),
        )
        .values(reason=None)
        .execution_options(synchronize_session=False)
    )
    erased_bookings: int = bookings.rowcount or 0  # type: ignore[attr-defined]
    erased_requests: int = requests.rowcount or 0  # type: ignore[attr-defined]
    if erased_bookings or erased_requests:
        await record(
            session,
            "retention.purged",
            territory_id=None,
            bookings_erased=erased_bookings,
            mt_requests_erased=erased_requests,
        )
    return {"bookings_erased": erased_bookings, "mt_requests_erased": erased_requests}
