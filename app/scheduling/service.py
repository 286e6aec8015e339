"""Publishing availability: rules, their materialisation into slots, one-off slots and
unavailabilities. Services flush, never commit."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import (
    ARRAY,
    DateTime,
    Integer,
    Row,
    String,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    column,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.types import Uuid

from app.activity.models import ActivityEvent
from app.activity.service import record, record_many, record_rows
from app.clock import now_utc as now_utc  # re-exported: the modules that read it here
from app.config import get_settings
from app.db import DriverStatement, driver_connection
from app.directory.models import Practitioner, Territory
from app.directory.practitioner_service import get_practitioner
from app.errors import Conflict, NotFound, ValidationFailed
from app.pagination import (
    cursor_float,
    cursor_instant,
    cursor_uuid,
    decode_cursor,
    encode_cursor,
)
from app.scheduling import schemas
from app.scheduling.booking_models import Booking
from app.scheduling.models import AvailabilityRule, Slot, Unavailability
from app.scheduling.offer_events import (
    OfferedSlot,
    OfferKey,
    offer_days,
    offer_events,
    record_offer,
    record_offer_days,
)
from app.scheduling.queries import (
    BOOKING_VISIBILITY,
    SEARCH_VISIBILITY,
    SlotSearch,
    first_unavailability_over,
    search_slots,
)
from app.scheduling.rules import (
    RuleError,
    RuleSpec,
    expand_periods,
    expand_rule,
    slots_in_window,
    validate_rule,
)
from app.security import ADMIN, COORDINATOR, PRACTICE, Caller

PUBLISHERS = (ADMIN, COORDINATOR, PRACTICE)
_INSERT_CHUNK = 20_000


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


async def publishing_practitioner(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID, *, lock: bool = False
) -> tuple[Practitioner, ZoneInfo]:
    """The practitioner (visible to the caller, who must be allowed to publish) and its zone.

    `lock` serialises the publications of one practitioner (a transaction-level advisory
    lock): two multi-slot inserts that wait on each other's rows in the exclusion constraint
    would otherwise deadlock."""
    caller.require(*PUBLISHERS)
    practitioner = await get_practitioner(session, caller, practitioner_id)
    if lock:
        await lock_publication(session, practitioner.id)
    tz = await session.scalar(
        select(Territory.timezone).where(Territory.id == practitioner.territory_id)
    )
    assert tz is not None
    return practitioner, ZoneInfo(tz)


_LOCK_PUBLICATION = DriverStatement(
    text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))").bindparams(
        bindparam("k", type_=String)
    )
)


async def lock_publication(session: AsyncSession, practitioner_id: uuid.UUID) -> None:
    """Serialise every change of one practitioner's slots until the transaction ends."""
    await _LOCK_PUBLICATION.execute(session, k=f"publish:{practitioner_id}")


# The publication hot paths (a one-off slot, a new rule) run on the driver connection (see
# app.db.DriverStatement): plain rows in, plain values out, no ORM object loaded.


@dataclass(frozen=True)
class Publisher:
    """What publishing needs of a practitioner: its ids and its territory's zone."""

    id: uuid.UUID
    territory_id: uuid.UUID
    tz: ZoneInfo


def _publisher_statement(*scope: Any) -> DriverStatement:
    return DriverStatement(
        select(Practitioner.id, Practitioner.territory_id, Territory.timezone)
        .join(Territory, Territory.id == Practitioner.territory_id)
        .where(Practitioner.id == bindparam("practitioner_id", type_=Uuid), *scope)
    )


# By the publisher's role, as `get_practitioner` sees practitioners (IS NOT DISTINCT FROM:
# `==` with None is IS NULL).
_PUBLISHER = {
    ADMIN: _publisher_statement(),
    PRACTICE: _publisher_statement(
        Practitioner.practice_id.is_not_distinct_from(bindparam("practice_id", type_=Uuid))
    ),
    COORDINATOR: _publisher_statement(
        Practitioner.territory_id == any_(bindparam("territory_ids", type_=ARRAY(Uuid)))
    ),
}


async def _locked_publisher(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID
) -> Publisher:
    """`publishing_practitioner(..., lock=True)` in two driver statements."""
    caller.require(*PUBLISHERS)
    row = await _PUBLISHER[caller.role].fetchrow(
        session,
        practitioner_id=practitioner_id,
        practice_id=caller.practice_id,
        territory_ids=list(caller.territory_ids),
    )
    if row is None:
        raise NotFound("Practitioner not found")
    await lock_publication(session, row["id"])
    return Publisher(row["id"], row["territory_id"], zone(row["timezone"]))


# Slot insertion -------------------------------------------------------------------------


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


def _status_on_insert(alias: str) -> str:
    """SQL: a new slot inside one of its practitioner's unavailabilities starts `unavailable`,
    others `free`; `alias` names the rows being inserted (a constant of this module)."""
    return f"""CASE WHEN EXISTS (
        SELECT 1 FROM unavailability u
        WHERE u.practitioner_id = {alias}.practitioner_id
          AND tstzrange(u.start, u."end") && tstzrange({alias}.start, {alias}."end")
    ) THEN 'unavailable' ELSE 'free' END"""  # noqa: S608 (a constant alias, no input)


_INSERT_SLOTS = text(
    f"""
    INSERT INTO slot (id, practitioner_id, territory_id, rule_id, source, start, "end",
                      modality, visibility, status)
    SELECT gen_random_uuid(), g.practitioner_id, g.territory_id, g.rule_id, g.source,
           g.start, g."end", g.modality, g.visibility,
           {_status_on_insert("g")}
    FROM unnest(:practitioner_ids, :territory_ids, :rule_ids, :sources, :starts, :ends,
                :modalities, :visibilities)
         AS g(practitioner_id, territory_id, rule_id, source, start, "end", modality, visibility)
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
            _INSERT_SLOTS,
            {
                "practitioner_ids": [s.practitioner_id for s in chunk],
                "territory_ids": [s.territory_id for s in chunk],
                "rule_ids": [s.rule_id for s in chunk],
                "sources": [s.source for s in chunk],
                "starts": [s.start for s in chunk],
                "ends": [s.end for s in chunk],
                "modalities": [s.modality for s in chunk],
                "visibilities": [s.visibility for s in chunk],
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


def _overlap_conflict(existing: Sequence[Slot], tz: ZoneInfo) -> Conflict:
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


# Rules ------------------------------------------------------------------------------------


def _spec(rule: AvailabilityRule | schemas.RuleIn) -> RuleSpec:
    return RuleSpec(
        rrule=rule.rrule,
        start_time=rule.start_time,
        end_time=rule.end_time,
        slot_minutes=rule.slot_minutes,
        valid_from=rule.valid_from,
        valid_until=rule.valid_until,
    )


def _validate(spec: RuleSpec) -> None:
    settings = get_settings()
    try:
        validate_rule(
            spec, max_slots=settings.max_slots_per_rule, horizon_days=settings.horizon_days
        )
    except RuleError as exc:
        raise ValidationFailed.field(["body", exc.field], exc.message) from exc


def rule_slots(
    rule: AvailabilityRule,
    practitioner_id: uuid.UUID,
    territory_id: uuid.UUID,
    tz: ZoneInfo,
    window_start: datetime,
    window_end: datetime,
) -> list[NewSlot]:
    return [
        NewSlot(
            practitioner_id=practitioner_id,
            territory_id=territory_id,
            rule_id=rule.id,
            source="rule",
            start=start,
            end=end,
            modality=rule.modality,
            visibility=rule.visibility,
        )
        for start, end in expand_rule(_spec(rule), tz, window_start, window_end)
    ]


async def _materialize_new(
    session: AsyncSession,
    rule: AvailabilityRule,
    practitioner: Practitioner,
    tz: ZoneInfo,
    *,
    now: datetime,
) -> int:
    """Create the rule's slots over the horizon; 409 if any overlaps a slot that is not one
    of this rule's own held or booked slots (those are kept as they are)."""
    window_end = now + timedelta(days=get_settings().horizon_days)
    wanted = rule_slots(rule, practitioner.id, practitioner.territory_id, tz, now, window_end)
    inserted = await insert_slots(session, wanted)
    await _refuse_overlaps(session, rule.id, practitioner.id, wanted, inserted, tz)
    rule.materialized_until = window_end
    await session.flush()
    await record_offer(
        session,
        "slots.offered",
        offered_slots(wanted, inserted),
        tz,
        subject_id=rule.id,
    )
    return len(inserted)


async def _refuse_overlaps(
    session: AsyncSession,
    rule_id: uuid.UUID,
    practitioner_id: uuid.UUID,
    wanted: Sequence[NewSlot],
    inserted: dict[tuple[uuid.UUID, datetime], str],
    tz: ZoneInfo,
) -> None:
    """409 if a wanted slot was skipped for overlapping a slot that is not one of the rule's
    own held or booked slots (those are kept as they are)."""
    skipped = [(s.start, s.end) for s in wanted if (s.practitioner_id, s.start) not in inserted]
    if skipped:
        blocking = [
            s
            for s in await overlapping_slots(session, practitioner_id, skipped, limit=200)
            if not (s.rule_id == rule_id and s.status in ("held", "booked"))
        ]
        if blocking:
            raise _overlap_conflict(blocking[:20], tz)


def offered_slots(
    candidates: Iterable[NewSlot], inserted: dict[tuple[uuid.UUID, datetime], str]
) -> list[OfferedSlot]:
    """The inserted slots that are on offer (not born inside an unavailability)."""
    return [
        OfferedSlot(s.practitioner_id, s.territory_id, s.start, s.end, s.modality, s.visibility)
        for s in candidates
        if inserted.get((s.practitioner_id, s.start)) == "free"
    ]


def _as_offered(rows: Iterable[Any]) -> list[OfferedSlot]:
    return [
        OfferedSlot(r.practitioner_id, r.territory_id, r.start, r.end, r.modality, r.visibility)
        for r in rows
    ]


_OFFER_COLUMNS = (
    Slot.practitioner_id,
    Slot.territory_id,
    Slot.start,
    Slot.end,
    Slot.modality,
    Slot.visibility,
)


def _published(
    caller: Caller,
    type_: str,
    rule: AvailabilityRule,
    practitioner: Practitioner | Publisher,
    **data: Any,
) -> dict[str, Any]:
    """The activity event of a rule's publication, as `record_many` takes it."""
    return {
        "type": type_,
        "territory_id": practitioner.territory_id,
        "practitioner_id": practitioner.id,
        "subject_id": rule.id,
        "actor_key_id": caller.key_id,
        "data": {"modality": rule.modality, "visibility": rule.visibility, **data},
    }


async def _record_published(
    session: AsyncSession,
    caller: Caller,
    type_: str,
    rule: AvailabilityRule,
    practitioner: Practitioner,
    **data: Any,
) -> None:
    await record_many(session, [_published(caller, type_, rule, practitioner, **data)])


# The rule's columns but those the database fills in.
_RULE_COLUMNS = [
    c.name for c in AvailabilityRule.__table__.columns if c.name not in ("created_at", "updated_at")
]


def _create_rule_statement() -> DriverStatement:
    """The rule (materialised to the horizon) and its slots by `_INSERT_SLOTS` (an overlap
    skipped), in one statement: a row for each slot inserted with the rule's created_at, or
    one row with no slot."""
    new_rule = (
        insert(AvailabilityRule)
        .values({name: bindparam(name) for name in _RULE_COLUMNS})
        .returning(AvailabilityRule.created_at)
        .cte("new_rule")
    )
    new_slots = _INSERT_SLOTS.columns(
        column("practitioner_id", Uuid),
        column("start", DateTime(timezone=True)),
        column("status", String),
    ).cte("new_slots")
    return DriverStatement(
        select(
            new_rule.c.created_at,
            new_slots.c.practitioner_id,
            new_slots.c.start,
            new_slots.c.status,
        ).select_from(new_rule.outerjoin(new_slots, true()))
    )


_CREATE_RULE = _create_rule_statement()


async def create_rule(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID, data: schemas.RuleIn
) -> tuple[AvailabilityRule, int, ZoneInfo]:
    """The rule (not in the session), the number of slots it created, and the zone. On the
    driver connection: the practitioner, the lock, the rule with its slots in a savepoint,
    then the offer and the rule's events."""
    publisher = await _locked_publisher(session, caller, practitioner_id)
    _validate(_spec(data))
    now = now_utc()
    window_end = now + timedelta(days=get_settings().horizon_days)
    rule = AvailabilityRule(
        id=uuid.uuid4(),
        practitioner_id=publisher.id,
        materialized_until=window_end,
        **data.model_dump(),
    )
    wanted = rule_slots(rule, publisher.id, publisher.territory_id, publisher.tz, now, window_end)
    conn = await driver_connection(session)
    async with conn.transaction():  # an overlap undoes the rule and its slots together
        rows = await _CREATE_RULE.fetch(
            session,
            **{name: getattr(rule, name) for name in _RULE_COLUMNS},
            practitioner_ids=[s.practitioner_id for s in wanted],
            territory_ids=[s.territory_id for s in wanted],
            rule_ids=[s.rule_id for s in wanted],
            sources=[s.source for s in wanted],
            starts=[s.start for s in wanted],
            ends=[s.end for s in wanted],
            modalities=[s.modality for s in wanted],
            visibilities=[s.visibility for s in wanted],
        )
        inserted = {
            (r["practitioner_id"], r["start"]): r["status"] for r in rows if r["start"] is not None
        }
        await _refuse_overlaps(session, rule.id, publisher.id, wanted, inserted, publisher.tz)
    rule.created_at = rows[0]["created_at"]
    offer = offer_days(offered_slots(wanted, inserted), publisher.tz)
    await record_rows(
        session,
        [
            *offer_events("slots.offered", offer, subject_id=rule.id),
            _published(caller, "rule.created", rule, publisher, slots=len(inserted)),
        ],
    )
    return rule, len(inserted), publisher.tz


async def get_rule(
    session: AsyncSession,
    caller: Caller,
    practitioner_id: uuid.UUID,
    rule_id: uuid.UUID,
    *,
    lock: bool = False,
) -> tuple[AvailabilityRule, Practitioner, ZoneInfo]:
    practitioner, tz = await publishing_practitioner(session, caller, practitioner_id, lock=lock)
    rule = await session.scalar(
        select(AvailabilityRule).where(
            AvailabilityRule.id == rule_id, AvailabilityRule.practitioner_id == practitioner.id
        )
    )
    if rule is None:
        raise NotFound("Availability rule not found")
    return rule, practitioner, tz


async def list_rules(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID
) -> list[AvailabilityRule]:
    practitioner, _ = await publishing_practitioner(session, caller, practitioner_id)
    rows = await session.scalars(
        select(AvailabilityRule)
        .where(AvailabilityRule.practitioner_id == practitioner.id)
        .order_by(AvailabilityRule.created_at, AvailabilityRule.id)
    )
    return list(rows.all())


async def withdraw_slots(
    session: AsyncSession, conditions: Sequence[Any], tz: ZoneInfo, *, subject_id: uuid.UUID
) -> int:
    """Delete the slots matching `conditions` and record the free ones as withdrawn from the
    offer (unavailable slots had already left it when they became unavailable)."""
    removed = (
        await session.execute(
            delete(Slot).where(*conditions).returning(*_OFFER_COLUMNS, Slot.status)
        )
    ).all()
    await record_offer(
        session,
        "slots.withdrawn",
        _as_offered(r for r in removed if r.status == "free"),
        tz,
        subject_id=subject_id,
    )
    return len(removed)


async def count_slots(session: AsyncSession, conditions: Sequence[Any]) -> int:
    return await session.scalar(select(func.count()).select_from(Slot).where(*conditions)) or 0


async def _remove_future_free_slots(
    session: AsyncSession, rule: AvailabilityRule, now: datetime, tz: ZoneInfo
) -> tuple[int, int]:
    """Delete the rule's future free or unavailable slots; held and booked ones stay."""
    future = [Slot.rule_id == rule.id, Slot.start > now]
    removed = await withdraw_slots(
        session, [*future, Slot.status.in_(("free", "unavailable"))], tz, subject_id=rule.id
    )
    kept = await count_slots(session, [*future, Slot.status.in_(("held", "booked"))])
    return removed, kept


async def update_rule(
    session: AsyncSession,
    caller: Caller,
    practitioner_id: uuid.UUID,
    rule_id: uuid.UUID,
    data: schemas.RulePatch,
) -> tuple[AvailabilityRule, schemas.MaterializationOut]:
    rule, practitioner, tz = await get_rule(session, caller, practitioner_id, rule_id, lock=True)
    changes = data.model_dump(exclude_unset=True)
    merged = schemas.RuleIn.model_validate(
        {**schemas.RuleIn.model_validate(rule, from_attributes=True).model_dump(), **changes}
    )
    _validate(_spec(merged))
    now = now_utc()
    async with session.begin_nested():
        removed, kept = await _remove_future_free_slots(session, rule, now, tz)
        for name, value in changes.items():
            setattr(rule, name, value)
        await session.flush()
        created = await _materialize_new(session, rule, practitioner, tz, now=now)
    await _record_published(
        session, caller, "rule.updated", rule, practitioner, slots=created, removed=removed
    )
    return rule, schemas.MaterializationOut(created=created, removed=removed, kept=kept)


async def delete_rule(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID, rule_id: uuid.UUID
) -> schemas.MaterializationOut:
    rule, practitioner, tz = await get_rule(session, caller, practitioner_id, rule_id, lock=True)
    removed, kept = await _remove_future_free_slots(session, rule, now_utc(), tz)
    await _record_published(session, caller, "rule.deleted", rule, practitioner, removed=removed)
    await session.delete(rule)  # kept slots lose their rule_id (ON DELETE SET NULL)
    await session.flush()
    return schemas.MaterializationOut(created=0, removed=removed, kept=kept)


@dataclass(frozen=True)
class PreviewSlot:
    """A slot a rule would create over the horizon, and what is in its way, if anything."""

    start: datetime
    end: datetime
    blocked_by: Slot | None = None  # an existing slot: the rule would be refused (409)
    kept: bool = False  # the edited rule's own held or booked slot, which stays as it is


async def preview_rule(
    session: AsyncSession,
    caller: Caller,
    practitioner_id: uuid.UUID,
    data: schemas.RuleIn,
    *,
    rule_id: uuid.UUID | None = None,
) -> tuple[list[PreviewSlot], ZoneInfo]:
    """The slots `create_rule` (or `update_rule` of `rule_id`) would create now, from the same
    validation and expansion, and the existing slots that would refuse them. Writes nothing."""
    practitioner, tz = await publishing_practitioner(session, caller, practitioner_id)
    _validate(_spec(data))
    now = now_utc()
    window_end = now + timedelta(days=get_settings().horizon_days)
    wanted = expand_rule(_spec(data), tz, now, window_end)
    if not wanted:
        return [], tz
    existing_stmt = (
        select(Slot)
        .where(
            Slot.practitioner_id == practitioner.id,
            Slot.start < wanted[-1][1],
            Slot.end > wanted[0][0],
        )
        .order_by(Slot.start)
    )
    if rule_id is not None:  # an edit first removes the rule's own future free slots
        existing_stmt = existing_stmt.where(
            ~and_(
                Slot.rule_id == rule_id,
                Slot.start > now,
                Slot.status.in_(("free", "unavailable")),
            )
        )
    existing = list((await session.scalars(existing_stmt)).all())
    preview: list[PreviewSlot] = []
    i = 0
    for start, end in wanted:  # both sorted; existing slots never overlap one another
        while i < len(existing) and existing[i].end <= start:
            i += 1
        hit = existing[i] if i < len(existing) and existing[i].start < end else None
        kept = bool(hit and rule_id and hit.rule_id == rule_id and hit.status in ("held", "booked"))
        preview.append(PreviewSlot(start, end, None if kept else hit, kept))
    return preview, tz


# The materialisation job ----------------------------------------------------------------


_MATERIALIZE_PERIODS = text(
    f"""
    WITH wanted AS (
        SELECT p.practitioner_id, p.territory_id, p.rule_id, p.modality, p.visibility,
               p.first_start + make_interval(mins => k * p.minutes) AS start,
               p.first_start + make_interval(mins => (k + 1) * p.minutes) AS "end"
        FROM unnest(:rule_ids, :practitioner_ids, :territory_ids, :modalities, :visibilities,
                    :first_starts, :counts, :minutes)
             AS p(rule_id, practitioner_id, territory_id, modality, visibility, first_start,
                  count, minutes),
             generate_series(0, p.count - 1) AS k
    ), inserted AS (
        INSERT INTO slot (id, practitioner_id, territory_id, rule_id, source, start, "end",
                          modality, visibility, status)
        SELECT gen_random_uuid(), w.practitioner_id, w.territory_id, w.rule_id, 'rule',
               w.start, w."end", w.modality, w.visibility,
               {_status_on_insert("w")}
        FROM wanted w
        ORDER BY w.practitioner_id, w.start
        ON CONFLICT DO NOTHING
        RETURNING territory_id, practitioner_id, modality, visibility, status, start, "end"
    )
    SELECT i.territory_id, i.practitioner_id, i.modality, i.visibility, i.status,
           to_char((i.start AT TIME ZONE t.timezone)::date, 'YYYY-MM-DD') AS day,
           count(*) AS slots,
           sum(extract(epoch FROM i."end" - i.start)::bigint / 60) AS minutes
    FROM inserted i JOIN territory t ON t.id = i.territory_id
    GROUP BY 1, 2, 3, 4, 5, 6
    ORDER BY 1, 2, 3, 4, 6
    """  # noqa: S608 (constants only)
).bindparams(
    bindparam("rule_ids", type_=ARRAY(Uuid)),
    bindparam("practitioner_ids", type_=ARRAY(Uuid)),
    bindparam("territory_ids", type_=ARRAY(Uuid)),
    bindparam("modalities", type_=ARRAY(String)),
    bindparam("visibilities", type_=ARRAY(String)),
    bindparam("first_starts", type_=ARRAY(DateTime(timezone=True))),
    bindparam("counts", type_=ARRAY(Integer)),
    bindparam("minutes", type_=ARRAY(Integer)),
)

_LIVE_RULE_COLUMNS = (
    AvailabilityRule.id,
    AvailabilityRule.rrule,
    AvailabilityRule.start_time,
    AvailabilityRule.end_time,
    AvailabilityRule.slot_minutes,
    AvailabilityRule.valid_from,
    AvailabilityRule.valid_until,
    AvailabilityRule.modality,
    AvailabilityRule.visibility,
    AvailabilityRule.materialized_until,
    Practitioner.id.label("practitioner_id"),
    Practitioner.territory_id,
    Territory.timezone,
)


async def _materialize_rules(
    session: AsyncSession,
    rules: Sequence[Any],
    *,
    now: datetime,
    horizon_end: datetime,
    progress: Any,
) -> tuple[int, int]:
    """Extend `rules` (rows of _LIVE_RULE_COLUMNS) to `horizon_end` in the session's
    transaction: their slots (skipping those already there or overlapping), their
    materialized_until and their `slots.offered` events. Returns (wanted, created).

    Python computes each period's DST-correct first slot and slot count (rules.py); the
    database cuts the periods into slots, inserts them, and counts the new free slots per
    local day for the offer ledger, so no per-slot work is done in Python."""
    columns: tuple[list[Any], ...] = ([], [], [], [], [], [], [], [])
    rule_ids, practitioner_ids, territory_ids, modalities, visibilities, firsts, counts, mins = (
        columns
    )
    wanted = 0
    for rule in rules:
        tz = zone(rule.timezone)
        start = max(now, rule.materialized_until or now)
        step = timedelta(minutes=rule.slot_minutes)
        for period_start, period_end in expand_periods(_spec(rule), tz, start, horizon_end):
            first, count = slots_in_window(period_start, period_end, step, start, horizon_end)
            if count:
                rule_ids.append(rule.id)
                practitioner_ids.append(rule.practitioner_id)
                territory_ids.append(rule.territory_id)
                modalities.append(rule.modality)
                visibilities.append(rule.visibility)
                firsts.append(first)
                counts.append(count)
                mins.append(rule.slot_minutes)
                wanted += count
        if progress is not None:
            progress(1)
    if not rules:
        return 0, 0
    # The planner cannot estimate generate_series' rows and would JIT-compile the statement
    # (about a second) for nothing. Its two sorts (insert order, offer days) of 100,000s of
    # rows would spill to disk with the default 4 MB of work_mem.
    await session.execute(
        text("SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true)")
    )
    await session.execute(
        update(AvailabilityRule)
        .where(AvailabilityRule.id.in_([rule.id for rule in rules]))
        .values(materialized_until=horizon_end)
        .execution_options(synchronize_session=False)
    )
    created = 0
    groups: dict[OfferKey, dict[str, dict[str, int]]] = defaultdict(dict)
    if rule_ids:
        result = await session.execute(
            _MATERIALIZE_PERIODS,
            {
                "rule_ids": rule_ids,
                "practitioner_ids": practitioner_ids,
                "territory_ids": territory_ids,
                "modalities": modalities,
                "visibilities": visibilities,
                "first_starts": firsts,
                "counts": counts,
                "minutes": mins,
            },
        )
        for row in result:
            created += row.slots
            if row.status == "free":  # slots born inside an unavailability are not on offer
                days = groups[(row.territory_id, row.practitioner_id, row.modality, row.visibility)]
                days[row.day] = {"slots": row.slots, "minutes": int(row.minutes)}
    await record_offer_days(session, "slots.offered", groups)
    return wanted, created


def _split_by_territory(rules: Sequence[Any], parts: int) -> list[list[Any]]:
    """`parts` groups of whole territories with about as many rules each (largest first)."""
    by_territory: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for rule in rules:
        by_territory[rule.territory_id].append(rule)
    groups: list[list[Any]] = [[] for _ in range(parts)]
    for territory_rules in sorted(by_territory.values(), key=len, reverse=True):
        min(groups, key=len).extend(territory_rules)
    return [g for g in groups if g]


async def materialize_all(
    session: AsyncSession,
    *,
    now: datetime | None = None,
    horizon_days: int | None = None,
    progress: Any = None,
    connections: int = 1,
) -> dict[str, int]:
    """Extend every live rule's slots to now + horizon. Running it twice changes nothing:
    rules remember how far they were materialised and inserts skip existing slots.

    `connections` > 1 (the job and `creneau materialize`, whose session has written nothing
    yet) shares the work, by whole territories, with that many - 1 extra connections of the
    session's engine, so that PostgreSQL inserts on several cores. Each extra connection
    commits its territories (slots, materialized_until and offer events together) once every
    part has succeeded, just before the caller commits the session: a failure after that
    leaves whole territories done, which the next run skips."""
    now = now or now_utc()
    horizon_end = now + timedelta(days=horizon_days or get_settings().horizon_days)
    today_min = (now - timedelta(days=1)).date()
    rules = (
        await session.execute(
            select(*_LIVE_RULE_COLUMNS)
            .join(Practitioner, Practitioner.id == AvailabilityRule.practitioner_id)
            .join(Territory, Territory.id == Practitioner.territory_id)
            .where(
                or_(
                    AvailabilityRule.materialized_until.is_(None),
                    AvailabilityRule.materialized_until < horizon_end,
                ),
                or_(
                    AvailabilityRule.valid_until.is_(None),
                    AvailabilityRule.valid_until >= today_min,
                ),
            )
            .order_by(AvailabilityRule.id)
        )
    ).all()
    engine = session.bind
    parts = _split_by_territory(rules, connections if isinstance(engine, AsyncEngine) else 1)
    if len(parts) <= 1:
        wanted, created = await _materialize_rules(
            session, rules, now=now, horizon_end=horizon_end, progress=progress
        )
    else:
        assert isinstance(engine, AsyncEngine)
        async with AsyncExitStack() as stack:
            others = [
                await stack.enter_async_context(AsyncSession(engine, expire_on_commit=False))
                for _ in parts[1:]
            ]
            # The session's commit waits for every part: a part must never wait for long on
            # a lock held by a transaction that itself waits on another part (a wait that
            # PostgreSQL cannot see as a deadlock). It fails instead, and the job with it.
            for part_session in [session, *others]:
                await part_session.execute(text("SET LOCAL lock_timeout = '60s'"))
            # A failing part cancels the others; nothing of theirs is committed then.
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = [
                        group.create_task(
                            _materialize_rules(
                                part_session,
                                part,
                                now=now,
                                horizon_end=horizon_end,
                                progress=progress,
                            )
                        )
                        for part_session, part in zip([session, *others], parts, strict=True)
                    ]
            except ExceptionGroup as failed:
                raise failed.exceptions[0]  # noqa: B904 - the part's own error, as if serial
            for other in others:
                await other.commit()
        wanted = sum(task.result()[0] for task in tasks)
        created = sum(task.result()[1] for task in tasks)
    return {"rules": len(rules), "slots_created": created, "skipped": wanted - created}


# Search -----------------------------------------------------------------------------------

MAX_SEARCH_WINDOW = timedelta(days=7)
DEFAULT_SEARCH_WINDOW = timedelta(hours=48)


async def search(
    session: AsyncSession,
    caller: Caller,
    *,
    start: datetime | None,
    end: datetime | None,
    modality: str | None,
    commune_insee: str | None,
    near: tuple[float, float] | None,
    radius_km: float | None,
    practitioner_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
    bookable_only: bool = False,
) -> tuple[list[Any], str | None]:
    """Bookable slots visible to the caller, by start then distance; with `bookable_only`,
    only those the caller may book itself (the CPTS's members: not the SAS's slots)."""
    caller.require(*SEARCH_VISIBILITY)
    now = now_utc()
    start = start or now
    end = end or start + DEFAULT_SEARCH_WINDOW
    if end <= start:
        raise ValidationFailed.field(["query", "to"], "must be after from")
    if end - start > MAX_SEARCH_WINDOW:
        raise ValidationFailed.field(["query", "to"], "the window is at most 7 days")
    if radius_km is not None and near is None:
        raise ValidationFailed.field(["query", "radius_km"], "needs near=lat,lon")
    after = None
    if cursor:
        after = decode_search_cursor(cursor)
    q = SlotSearch(
        start=max(start, now),
        end=end,
        now=now,
        territory_ids=None if caller.instance_wide else caller.territory_ids,
        visibilities=(
            BOOKING_VISIBILITY.get(caller.role, ())
            if bookable_only
            else SEARCH_VISIBILITY[caller.role]
        ),
        modality=modality,
        commune_insee=commune_insee,
        practitioner_id=practitioner_id,
        near=near,
        radius_km=radius_km,
        limit=limit,
        after=after,
    )
    rows = await search_slots(session, q)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(
            [last["start"].isoformat(), repr(last["distance_km"]), last["id"]]
        )
    return rows, next_cursor


def decode_search_cursor(cursor: str) -> tuple[datetime, float, uuid.UUID]:
    at, distance, ident = decode_cursor(cursor, 3)
    # No two points of the Earth are more than half its circumference (20,037.5 km) apart.
    return cursor_instant(at), cursor_float(distance, 0.0, 20_040.0), cursor_uuid(ident)


# One-off slots ----------------------------------------------------------------------------


def _one_off_statement() -> DriverStatement:
    """The slot, unless inside one of its practitioner's unavailabilities, and its offer
    event, in one statement: the slot's id, or no row when it is inside an unavailability.
    An overlap is the exclusion constraint's error."""
    practitioner_id = bindparam("practitioner_id", type_=Uuid)
    territory_id = bindparam("territory_id", type_=Uuid)
    start = bindparam("start", type_=DateTime(timezone=True))
    end = bindparam("end", type_=DateTime(timezone=True))
    unavailable = exists().where(
        Unavailability.practitioner_id == practitioner_id,
        Unavailability.start < end,
        Unavailability.end > start,
    )
    new_slot = (
        insert(Slot)
        .from_select(
            ["id", "practitioner_id", "territory_id", "source", "start", "end", "modality",
             "visibility", "status"],
            select(
                bindparam("id", type_=Uuid),
                practitioner_id,
                territory_id,
                literal("manual"),
                start,
                end,
                bindparam("modality", type_=String),
                bindparam("visibility", type_=String),
                literal("free"),
            ).where(~unavailable),
        )
        .returning(Slot.id)
        .cte("new_slot")
    )  # fmt: skip
    offer = (
        insert(ActivityEvent)
        .from_select(
            ["type", "territory_id", "practitioner_id", "subject_id", "actor_key_id", "data"],
            select(
                literal("slots.offered"),
                territory_id,
                practitioner_id,
                new_slot.c.id,
                bindparam("actor_key_id", type_=Uuid),
                cast(type_coerce(bindparam("offer_data"), Text), JSONB),
            ),
        )
        .returning(ActivityEvent.subject_id)
    )
    return DriverStatement(offer.add_cte(new_slot))


_ONE_OFF = _one_off_statement()


async def create_one_off_slot(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID, data: schemas.OneOffSlotIn
) -> tuple[Slot, ZoneInfo]:
    """The slot (not in the session) and the zone. On the driver connection: the
    practitioner, the lock, and the slot with its offer event in a savepoint."""
    publisher = await _locked_publisher(session, caller, practitioner_id)
    if data.start <= now_utc():
        raise ValidationFailed.field(["body", "start"], "must be in the future")
    slot = Slot(
        id=uuid.uuid4(),
        practitioner_id=publisher.id,
        territory_id=publisher.territory_id,
        rule_id=None,
        source="manual",
        start=data.start,
        end=data.end,
        modality=data.modality,
        visibility=data.visibility,
        status="free",
        hold_expires_at=None,
    )
    offered = OfferedSlot(
        publisher.id, publisher.territory_id, slot.start, slot.end, slot.modality, slot.visibility
    )
    [event] = offer_events(
        "slots.offered",
        offer_days([offered], publisher.tz),
        actor_key_id=caller.key_id,
        subject_id=slot.id,
    )
    conn = await driver_connection(session)
    try:
        async with conn.transaction():  # a refused slot leaves the transaction usable
            row = await _ONE_OFF.fetchrow(
                session,
                id=slot.id,
                practitioner_id=publisher.id,
                territory_id=publisher.territory_id,
                start=data.start,
                end=data.end,
                modality=data.modality,
                visibility=data.visibility,
                actor_key_id=caller.key_id,
                offer_data=json.dumps(event["data"]),
            )
    except asyncpg.IntegrityConstraintViolationError as exc:
        existing = await overlapping_slots(session, publisher.id, [(data.start, data.end)])
        if existing:
            raise _overlap_conflict(existing, publisher.tz) from exc
        raise Conflict(exc.args[0]) from exc  # the driver's message, as the ORM's error had it
    if row is None:
        raise Conflict("The practitioner is declared unavailable over this period")
    return slot, publisher.tz


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
)
# A surnuméraire that still takes the GP's time.
_LIVE_OVERBOOKING = (
    Booking.overbooked.is_(True),
    Booking.status.in_(("booked", "honored", "no_show")),
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
        *_LIVE_OVERBOOKING,
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


# Unavailabilities -------------------------------------------------------------------------


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
            *_LIVE_OVERBOOKING,
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
            .returning(*_OFFER_COLUMNS)
            .execution_options(synchronize_session=False)
        )
    ).all()
    await record_offer(
        session,
        "slots.withdrawn",
        _as_offered(changed),
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
            .returning(*_OFFER_COLUMNS)
            .execution_options(synchronize_session=False)
        )
    ).all()
    await record_offer(
        session,
        "slots.offered",
        _as_offered(freed),
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
