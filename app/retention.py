"""The retention job: the patient data of bookings and MT requests closed for longer than the
configured retention is erased (the rows stay, for the indicators and the journal)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.service import record
from app.clock import now_utc
from app.config import get_settings
from app.medecin_traitant.models import MtProposal, MtRequest
from app.patient_data import PATIENT_FIELDS
from app.scheduling.booking_models import Booking


async def purge_expired(session: AsyncSession, *, now: datetime | None = None) -> dict[str, int]:
    """Job: erase the patient data of bookings and MT requests closed for longer than the
    configured retention, counted back from `now` (the service's clock by default).
    Indicators do not change: they read the activity log only."""
    settings = get_settings()
    now = now or now_utc()
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
