"""How a booking ends after its start: the outcome the practice records (honoured, no-show),
and the job that lets expired holds go."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import now_utc
from app.errors import Conflict, Forbidden
from app.scheduling import booking_schemas as schemas
from app.scheduling.booking_events import record_change
from app.scheduling.booking_models import Booking
from app.scheduling.booking_views import BookingView, lock_booking
from app.scheduling.models import Slot
from app.security import COORDINATOR, PRACTICE, Caller


async def record_outcome(
    session: AsyncSession, caller: Caller, booking_id: uuid.UUID, data: schemas.OutcomeIn
) -> BookingView:
    caller.require(PRACTICE, COORDINATOR)
    view = await lock_booking(session, caller, booking_id)
    booking, now = view.booking, now_utc()
    if caller.role == PRACTICE and booking.practice_id != caller.practice_id:
        raise Forbidden("The outcome is recorded by the practice that received the patient")
    if booking.status != "booked":
        raise Conflict(
            f"An outcome is recorded on a booked consultation, not a {booking.status} one"
        )
    if booking.start > now:
        raise Conflict("The outcome can only be recorded once the consultation has started")
    booking.status, booking.outcome_at = data.outcome, now
    await session.flush()
    await record_change(session, caller, f"booking.{data.outcome}", booking)
    return view


async def expire_holds(session: AsyncSession, *, now: datetime | None = None) -> dict[str, int]:
    """Release holds that have expired. Search and booking never wait for this: an expired
    hold is bookable the moment it expires; this only tidies statuses. Safe to run twice."""
    now = now or now_utc()
    expired = (
        await session.scalars(
            update(Booking)
            .where(Booking.status == "held", Booking.hold_expires_at <= now)
            .values(status="expired", hold_expires_at=None)
            .returning(Booking)
            .execution_options(synchronize_session=False)
        )
    ).all()
    slot_ids = [b.slot_id for b in expired if b.slot_id is not None]
    if slot_ids:
        await session.execute(
            update(Slot)
            .where(Slot.id.in_(slot_ids), Slot.status == "held", Slot.hold_expires_at <= now)
            .values(status="free", hold_expires_at=None)
            .execution_options(synchronize_session=False)
        )
    for booking in expired:
        await record_change(session, None, "hold.expired", booking)
    return {"holds_expired": len(expired)}
