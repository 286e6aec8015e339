"""Publishing availability rules: create, read, edit and delete a rule, its slots over the
horizon and its activity events. Services flush, never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, String, bindparam, column, insert, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from app.activity.service import record_many, record_rows
from app.clock import now_utc
from app.config import get_settings
from app.db import DriverStatement, driver_connection
from app.directory.models import Practitioner
from app.errors import NotFound, ValidationFailed
from app.scheduling import schemas
from app.scheduling.models import AvailabilityRule, Slot
from app.scheduling.offer_events import offer_days, offer_events, record_offer
from app.scheduling.publishers import Publisher, locked_publisher, publishing_practitioner
from app.scheduling.rules import RuleError, RuleSpec, expand_rule, validate_rule
from app.scheduling.slot_writes import (
    INSERT_SLOTS,
    NewSlot,
    count_slots,
    insert_slots,
    offered_slots,
    overlap_conflict,
    overlapping_slots,
    withdraw_slots,
)
from app.security import Caller


def rule_spec(rule: AvailabilityRule | schemas.RuleIn) -> RuleSpec:
    return RuleSpec(
        rrule=rule.rrule,
        start_time=rule.start_time,
        end_time=rule.end_time,
        slot_minutes=rule.slot_minutes,
        valid_from=rule.valid_from,
        valid_until=rule.valid_until,
    )


def validate_spec(spec: RuleSpec) -> None:
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
            crisis_id=rule.crisis_id,
        )
        for start, end in expand_rule(rule_spec(rule), tz, window_start, window_end)
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
            raise overlap_conflict(blocking[:20], tz)


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
    """The rule (materialised to the horizon) and its slots by `INSERT_SLOTS` (an overlap
    skipped), in one statement: a row for each slot inserted with the rule's created_at, or
    one row with no slot."""
    new_rule = (
        insert(AvailabilityRule)
        .values({name: bindparam(name) for name in _RULE_COLUMNS})
        .returning(AvailabilityRule.created_at)
        .cte("new_rule")
    )
    new_slots = INSERT_SLOTS.columns(
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
    publisher = await locked_publisher(session, caller, practitioner_id)
    validate_spec(rule_spec(data))
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
            crisis_ids=[s.crisis_id for s in wanted],
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
    validate_spec(rule_spec(merged))
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
