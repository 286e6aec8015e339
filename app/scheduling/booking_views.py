"""Reading bookings: what each caller may see, one or a page of them, and the response shape."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory.models import Practice, Practitioner, Territory
from app.errors import NotFound
from app.patient_data import patient_out
from app.scheduling import booking_schemas as schemas
from app.scheduling.booking_models import Booking
from app.scheduling.rules import zone
from app.security import ADMIN, COORDINATOR, PRACTICE, REGULATOR, Caller

READERS = (ADMIN, COORDINATOR, PRACTICE, REGULATOR)


@dataclass
class BookingView:
    """A booking with what its readers need, and whether this caller may see the patient."""

    booking: Booking
    practitioner: Practitioner | schemas.BookingPractitionerOut
    practice: Practice | schemas.BookingPracticeOut
    timezone: str
    show_patient: bool


def visible_bookings(caller: Caller) -> Select[Booking, Practitioner, Practice, str]:
    caller.require(*READERS)
    stmt = (
        select(Booking, Practitioner, Practice, Territory.timezone)
        .join(Practitioner, Practitioner.id == Booking.practitioner_id)
        .join(Practice, Practice.id == Booking.practice_id)
        .join(Territory, Territory.id == Booking.territory_id)
    )
    if caller.role == REGULATOR:
        # Its SAS's bookings, in the territories the key may act in now.
        return stmt.where(
            Booking.regulator_id == caller.regulator_id,
            Booking.territory_id.in_(caller.territory_ids),
        )
    if caller.role == PRACTICE:
        # Those on its slots, and the CPTS-internal ones it booked on its colleagues' slots.
        return stmt.where(
            or_(
                Booking.practice_id == caller.practice_id,
                Booking.booked_by_practice_id == caller.practice_id,
            )
        )
    if caller.role == COORDINATOR:
        return stmt.where(Booking.territory_id.in_(caller.territory_ids))
    return stmt


def _view(caller: Caller, row: Any) -> BookingView:
    booking, practitioner, practice, tz = row
    # Patient data: the booking SAS, the slot's practice and the coordinator; never others.
    return BookingView(booking, practitioner, practice, tz, caller.role != ADMIN)


async def get_booking(session: AsyncSession, caller: Caller, booking_id: uuid.UUID) -> BookingView:
    row = (
        await session.execute(visible_bookings(caller).where(Booking.id == booking_id))
    ).one_or_none()
    if row is None:
        raise NotFound("Booking not found")
    return _view(caller, row)


async def lock_booking(session: AsyncSession, caller: Caller, booking_id: uuid.UUID) -> BookingView:
    row = (
        await session.execute(
            visible_bookings(caller).where(Booking.id == booking_id).with_for_update(of=Booking)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("Booking not found")
    return _view(caller, row)


async def list_bookings(
    session: AsyncSession,
    caller: Caller,
    *,
    status: str | None,
    start: datetime | None,
    end: datetime | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[BookingView], str | None]:
    from app.pagination import decode_time_id_cursor, encode_cursor

    stmt = visible_bookings(caller)
    if status is not None:
        stmt = stmt.where(Booking.status == status)
    if start is not None:
        stmt = stmt.where(Booking.start >= start)
    if end is not None:
        stmt = stmt.where(Booking.start < end)
    if cursor:
        at, ident = decode_time_id_cursor(cursor)
        stmt = stmt.where((Booking.start > at) | and_(Booking.start == at, Booking.id > ident))
    rows = (await session.execute(stmt.order_by(Booking.start, Booking.id).limit(limit + 1))).all()
    views = [_view(caller, row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = views[-1].booking
        next_cursor = encode_cursor([last.start.isoformat(), last.id])
    return views, next_cursor


def render(view: BookingView) -> schemas.BookingOut:
    """The response shape, timestamps in the territory's local offset."""
    tz = zone(view.timezone)
    b = view.booking

    def loc(value: datetime | None) -> datetime | None:
        return value.astimezone(tz) if value is not None else None

    patient = patient_out(b, visible=view.show_patient)
    return schemas.BookingOut(
        id=b.id,
        status=b.status,
        slot=(
            schemas.BookingSlotOut(
                id=b.slot_id,
                start=b.start.astimezone(tz),
                end=b.end.astimezone(tz),
                modality=b.modality,
            )
            if b.slot_id is not None
            else None
        ),
        start=b.start.astimezone(tz),
        end=b.end.astimezone(tz),
        modality=b.modality,
        overbooked=b.overbooked,
        practitioner=schemas.BookingPractitionerOut.model_validate(view.practitioner),
        practice=schemas.BookingPracticeOut.model_validate(view.practice),
        territory_id=b.territory_id,
        regulator_id=b.regulator_id,
        patient=patient,
        sas_case_ref=b.sas_case_ref,
        reason=b.reason,
        visit_address=b.visit_address if patient is not None else None,
        hold_expires_at=loc(b.hold_expires_at),
        created_at=b.created_at.astimezone(tz),
        booked_at=loc(b.booked_at),
        cancelled_at=loc(b.cancelled_at),
        cancel_reason=b.cancel_reason,
        outcome_at=loc(b.outcome_at),
    )
