"""Unavailabilities (a practitioner's absences): declaring one makes its slots unavailable,
lifting it frees them; booked slots and surnuméraires inside are reported, never touched."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.service import record
from app.errors import Conflict, NotFound
from app.scheduling import schemas
from app.scheduling.booking_models import Booking
from app.scheduling.models import Slot, Unavailability
from app.scheduling.offer_events import record_offer
from app.scheduling.publishers import publishing_practitioner
from app.scheduling.queries import LIVE_OVERBOOKING, first_unavailability_over
from app.scheduling.slot_writes import OFFER_COLUMNS, as_offered
from app.security import Caller


@dataclass(frozen=True)
class AbsenceConflict:
    """A booked slot or a surnuméraire inside an absence, for the practice to handle."""

    start: datetime
    end: datetime
    status: str
    slot_id: uuid.UUID | None
    booking_id: uuid.UUID | None


async def _booked_inside(
    session: AsyncSession, practitioner_id: uuid.UUID, start: datetime, end: datetime
) -> list[AbsenceConflict]:
    """The booked slots and the surnuméraires of a period: an absence's conflicts."""
    slots = await session.execute(
        select(Slot.id, Slot.start, Slot.end, Slot.status).where(
            Slot.practitioner_id == practitioner_id,
            Slot.start < end,
            Slot.end > start,
            Slot.status == "booked",
        )
    )
    overbooked = await session.execute(
        select(Booking.id, Booking.start, Booking.end, Booking.status).where(
            Booking.practitioner_id == practitioner_id,
            *LIVE_OVERBOOKING,
            Booking.start < end,
            Booking.end > start,
        )
    )
    conflicts = [AbsenceConflict(r.start, r.end, r.status, r.id, None) for r in slots]
    conflicts += [AbsenceConflict(r.start, r.end, r.status, None, r.id) for r in overbooked]
    return sorted(conflicts, key=lambda c: c.start)


async def create_unavailability(
    session: AsyncSession,
    caller: Caller,
    practitioner_id: uuid.UUID,
    data: schemas.UnavailabilityIn,
) -> tuple[Unavailability, int, list[AbsenceConflict], ZoneInfo]:
    """Free and held slots inside become unavailable; booked ones and surnuméraires stay and
    are reported."""
    practitioner, tz = await publishing_practitioner(session, caller, practitioner_id, lock=True)
    # Under the publication lock: two requests declaring the same absence run one by one.
    other = await first_unavailability_over(session, practitioner.id, data.start, data.end)
    if other is not None:
        raise Conflict(
            "Overlaps another unavailability of this practitioner, from "
            f"{other.start.astimezone(tz).isoformat()} to {other.end.astimezone(tz).isoformat()}",
            unavailability_id=str(other.id),
            unavailable_from=other.start.astimezone(tz).isoformat(),
            unavailable_until=other.end.astimezone(tz).isoformat(),
        )
    unavailability = Unavailability(
        practitioner_id=practitioner.id, start=data.start, end=data.end, reason=data.reason
    )
    session.add(unavailability)
    await session.flush()
    inside = and_(
        Slot.practitioner_id == practitioner.id, Slot.start < data.end, Slot.end > data.start
    )
    changed = (
        await session.execute(
            update(Slot)
            .where(inside, Slot.status.in_(("free", "held")))
            .values(status="unavailable", hold_expires_at=None)
            .returning(*OFFER_COLUMNS)
            .execution_options(synchronize_session=False)
        )
    ).all()
    await record_offer(
        session,
        "slots.withdrawn",
        as_offered(changed),
        tz,
        actor_key_id=caller.key_id,
        subject_id=unavailability.id,
    )
    conflicts = await _booked_inside(session, practitioner.id, data.start, data.end)
    made_unavailable = len(changed)
    await record(
        session,
        "unavailability.created",
        territory_id=practitioner.territory_id,
        practitioner_id=practitioner.id,
        subject_id=unavailability.id,
        actor_key_id=caller.key_id,
        slots_made_unavailable=made_unavailable,
        conflicts=len(conflicts),
    )
    return unavailability, made_unavailable, conflicts, tz


async def list_unavailabilities(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID, *, after: datetime
) -> tuple[list[Unavailability], ZoneInfo]:
    """The practitioner's absences that end after `after`, by start."""
    practitioner, tz = await publishing_practitioner(session, caller, practitioner_id)
    rows = await session.scalars(
        select(Unavailability)
        .where(Unavailability.practitioner_id == practitioner.id, Unavailability.end > after)
        .order_by(Unavailability.start)
        .limit(200)
    )
    return list(rows.all()), tz


async def get_unavailability(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID, unavailability_id: uuid.UUID
) -> tuple[Unavailability, list[AbsenceConflict], ZoneInfo]:
    """An absence and the booked slots and surnuméraires inside it (the conflicts the
    practice must handle)."""
    practitioner, tz = await publishing_practitioner(session, caller, practitioner_id)
    unavailability = await session.scalar(
        select(Unavailability).where(
            Unavailability.id == unavailability_id,
            Unavailability.practitioner_id == practitioner.id,
        )
    )
    if unavailability is None:
        raise NotFound("Unavailability not found")
    booked = await _booked_inside(
        session, practitioner.id, unavailability.start, unavailability.end
    )
    return unavailability, booked, tz


async def delete_unavailability(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID, unavailability_id: uuid.UUID
) -> int:
    """Lift an unavailability; its slots that no other unavailability covers are free again."""
    practitioner, tz = await publishing_practitioner(session, caller, practitioner_id, lock=True)
    unavailability = await session.scalar(
        select(Unavailability).where(
            Unavailability.id == unavailability_id,
            Unavailability.practitioner_id == practitioner.id,
        )
    )
    if unavailability is None:
        raise NotFound("Unavailability not found")
    await session.delete(unavailability)
    await session.flush()
    other = (
        select(Unavailability.id)
        .where(
            Unavailability.practitioner_id == practitioner.id,
            Unavailability.start < Slot.end,
            Unavailability.end > Slot.start,
        )
        .exists()
    )
    freed = (
        await session.execute(
            update(Slot)
            .where(
                Slot.practitioner_id == practitioner.id,
                Slot.start < unavailability.end,
                Slot.end > unavailability.start,
                Slot.status == "unavailable",
                ~other,
            )
            .values(status="free")
            .returning(*OFFER_COLUMNS)
            .execution_options(synchronize_session=False)
        )
    ).all()
    await record_offer(
        session,
        "slots.offered",
        as_offered(freed),
        tz,
        actor_key_id=caller.key_id,
        subject_id=unavailability.id,
    )
    await record(
        session,
        "unavailability.deleted",
        territory_id=practitioner.territory_id,
        practitioner_id=practitioner.id,
        subject_id=unavailability.id,
        actor_key_id=caller.key_id,
        slots_freed=len(freed),
    )
    return len(freed)
