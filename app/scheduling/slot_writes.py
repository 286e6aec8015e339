"""Writing slots: bulk insertion (an overlap skipped, a slot born inside an absence
unavailable), the 409 of an overlap, withdrawal, and the offer they make."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ARRAY, DateTime, String, and_, bindparam, delete, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from app.errors import Conflict
from app.scheduling.models import Slot
from app.scheduling.offer_events import OfferedSlot, record_offer

_INSERT_CHUNK = 20_000


@dataclass(frozen=True)
class NewSlot:
    practitioner_id: uuid.UUID
    territory_id: uuid.UUID
    rule_id: uuid.UUID | None
    source: str
    start: datetime
    end: datetime
    modality: str
    visibility: str
    crisis_id: uuid.UUID | None = None  # a crisis surge rule's slots carry its crisis


def status_on_insert(alias: str) -> str:
    """SQL: a new slot inside one of its practitioner's unavailabilities starts `unavailable`,
    others `free`; `alias` names the rows being inserted (a constant of this module)."""
    return f"""CASE WHEN EXISTS (
        SELECT 1 FROM unavailability u
        WHERE u.practitioner_id = {alias}.practitioner_id
          AND tstzrange(u.start, u."end") && tstzrange({alias}.start, {alias}."end")
    ) THEN 'unavailable' ELSE 'free' END"""  # noqa: S608 (a constant alias, no input)


INSERT_SLOTS = text(
    f"""
    INSERT INTO slot (id, practitioner_id, territory_id, rule_id, source, start, "end",
                      modality, visibility, status, crisis_id)
    SELECT gen_random_uuid(), g.practitioner_id, g.territory_id, g.rule_id, g.source,
           g.start, g."end", g.modality, g.visibility,
           {status_on_insert("g")}, g.crisis_id
    FROM unnest(:practitioner_ids, :territory_ids, :rule_ids, :sources, :starts, :ends,
                :modalities, :visibilities, :crisis_ids)
         AS g(practitioner_id, territory_id, rule_id, source, start, "end", modality, visibility,
              crisis_id)
    ON CONFLICT DO NOTHING
    RETURNING practitioner_id, start, status
    """  # noqa: S608 (constants only)
).bindparams(
    bindparam("practitioner_ids", type_=ARRAY(Uuid)),
    bindparam("territory_ids", type_=ARRAY(Uuid)),
    bindparam("rule_ids", type_=ARRAY(Uuid)),
    bindparam("sources", type_=ARRAY(String)),
    bindparam("starts", type_=ARRAY(DateTime(timezone=True))),
    bindparam("ends", type_=ARRAY(DateTime(timezone=True))),
    bindparam("modalities", type_=ARRAY(String)),
    bindparam("visibilities", type_=ARRAY(String)),
    bindparam("crisis_ids", type_=ARRAY(Uuid)),
)


async def insert_slots(
    session: AsyncSession, slots: Sequence[NewSlot]
) -> dict[tuple[uuid.UUID, datetime], str]:
    """Insert in bulk; a slot that would overlap another (exclusion constraint) is skipped.
    Returns the status (free, or unavailable inside an unavailability) of each slot actually
    inserted, by (practitioner_id, start)."""
    inserted: dict[tuple[uuid.UUID, datetime], str] = {}
    for i in range(0, len(slots), _INSERT_CHUNK):
        chunk = slots[i : i + _INSERT_CHUNK]
        rows = await session.execute(
            INSERT_SLOTS,
            {
                "practitioner_ids": [s.practitioner_id for s in chunk],
                "territory_ids": [s.territory_id for s in chunk],
                "rule_ids": [s.rule_id for s in chunk],
                "sources": [s.source for s in chunk],
                "starts": [s.start for s in chunk],
                "ends": [s.end for s in chunk],
                "modalities": [s.modality for s in chunk],
                "visibilities": [s.visibility for s in chunk],
                "crisis_ids": [s.crisis_id for s in chunk],
            },
        )
        inserted.update(((pid, start), status) for pid, start, status in rows)
    return inserted


async def overlapping_slots(
    session: AsyncSession,
    practitioner_id: uuid.UUID,
    periods: Iterable[tuple[datetime, datetime]],
    *,
    limit: int = 20,
) -> list[Slot]:
    conditions = [and_(Slot.start < end, Slot.end > start) for start, end in periods]
    if not conditions:
        return []
    stmt = (
        select(Slot)
        .where(Slot.practitioner_id == practitioner_id, or_(*conditions))
        .order_by(Slot.start)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


def overlap_conflict(existing: Sequence[Slot], tz: ZoneInfo) -> Conflict:
    first = existing[0]
    when = first.start.astimezone(tz).isoformat()
    return Conflict(
        f"Overlaps {len(existing)} existing slot(s) of this practitioner, the first at {when}",
        overlapping=[
            {
                "slot_id": str(s.id),
                "start": s.start.astimezone(tz).isoformat(),
                "end": s.end.astimezone(tz).isoformat(),
                "status": s.status,
            }
            for s in existing
        ],
    )


def offered_slots(
    candidates: Iterable[NewSlot], inserted: dict[tuple[uuid.UUID, datetime], str]
) -> list[OfferedSlot]:
    """The inserted slots that are on offer (not born inside an unavailability)."""
    return [
        OfferedSlot(s.practitioner_id, s.territory_id, s.start, s.end, s.modality, s.visibility)
        for s in candidates
        if inserted.get((s.practitioner_id, s.start)) == "free"
    ]


def as_offered(rows: Iterable[Any]) -> list[OfferedSlot]:
    return [
        OfferedSlot(r.practitioner_id, r.territory_id, r.start, r.end, r.modality, r.visibility)
        for r in rows
    ]


OFFER_COLUMNS = (
    Slot.practitioner_id,
    Slot.territory_id,
    Slot.start,
    Slot.end,
    Slot.modality,
    Slot.visibility,
)


async def withdraw_slots(
    session: AsyncSession, conditions: Sequence[Any], tz: ZoneInfo, *, subject_id: uuid.UUID
) -> int:
    """Delete the slots matching `conditions` and record the free ones as withdrawn from the
    offer (unavailable slots had already left it when they became unavailable)."""
    removed = (
        await session.execute(
            delete(Slot).where(*conditions).returning(*OFFER_COLUMNS, Slot.status)
        )
    ).all()
    await record_offer(
        session,
        "slots.withdrawn",
        as_offered(r for r in removed if r.status == "free"),
        tz,
        subject_id=subject_id,
    )
    return len(removed)


async def count_slots(session: AsyncSession, conditions: Sequence[Any]) -> int:
    return await session.scalar(select(func.count()).select_from(Slot).where(*conditions)) or 0
