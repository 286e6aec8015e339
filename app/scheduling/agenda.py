"""A practitioner's agenda as its practice and coordinator see it: every slot, every status,
and its surnuméraires."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, String, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from app.scheduling.booking_models import Booking
from app.scheduling.models import Slot
from app.scheduling.publishers import publishing_practitioner
from app.scheduling.queries import LIVE_OVERBOOKING
from app.security import Caller

# SlotOut's fields, in its order.
_AGENDA_COLUMNS = (
    Slot.id,
    Slot.practitioner_id,
    Slot.rule_id,
    Slot.source,
    Slot.start,
    Slot.end,
    Slot.modality,
    Slot.visibility,
    Slot.status,
    Slot.crisis_id,
)


# A surnuméraire in the agenda: SlotOut's fields from its booking (`source` "overbook", the
# booking's id and status).
_OVERBOOK_AGENDA_COLUMNS = (
    Booking.id,
    Booking.practitioner_id,
    literal(None, Uuid).label("rule_id"),
    literal("overbook", String).label("source"),
    Booking.start,
    Booking.end,
    Booking.modality,
    literal("sas", String).label("visibility"),
    Booking.status,
    literal(None, Uuid).label("crisis_id"),
)


async def list_practitioner_slots(
    session: AsyncSession,
    caller: Caller,
    practitioner_id: uuid.UUID,
    start: datetime,
    end: datetime,
) -> tuple[Sequence[Row[*tuple[Any, ...]]], ZoneInfo]:
    """The practitioner's agenda, every status (practice and coordinator view), as rows of
    SlotOut's fields: a week is hundreds of slots, which ORM objects would cost for nothing.
    Its surnuméraires are in it too, with `source` "overbook" (their id is the booking's)."""
    practitioner, tz = await publishing_practitioner(session, caller, practitioner_id)
    slots = select(*_AGENDA_COLUMNS).where(
        Slot.practitioner_id == practitioner.id, Slot.start >= start, Slot.start < end
    )
    overbooked = select(*_OVERBOOK_AGENDA_COLUMNS).where(
        Booking.practitioner_id == practitioner.id,
        *LIVE_OVERBOOKING,
        Booking.start >= start,
        Booking.start < end,
    )
    union = slots.union_all(overbooked).subquery()
    rows = await session.execute(
        select(*(union.c[c.name] for c in _AGENDA_COLUMNS))
        .order_by(union.c.start, union.c.source)
        .limit(5000)
    )
    return rows.all(), tz
