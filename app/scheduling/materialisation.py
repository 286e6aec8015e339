"""The materialisation job: every live rule's slots extended to the horizon, in bulk, on
one or several connections."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ARRAY, DateTime, Integer, String, bindparam, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.types import Uuid

from app.clock import now_utc
from app.config import get_settings
from app.directory.models import Practitioner, Territory
from app.scheduling.models import AvailabilityRule
from app.scheduling.offer_events import OfferKey, record_offer_days
from app.scheduling.publication import rule_spec
from app.scheduling.rules import expand_periods, slots_in_window, zone
from app.scheduling.slot_writes import status_on_insert

_MATERIALIZE_PERIODS = text(
    f"""
    WITH wanted AS (
        SELECT p.practitioner_id, p.territory_id, p.rule_id, p.modality, p.visibility,
               p.crisis_id,
               p.first_start + make_interval(mins => k * p.minutes) AS start,
               p.first_start + make_interval(mins => (k + 1) * p.minutes) AS "end"
        FROM unnest(:rule_ids, :practitioner_ids, :territory_ids, :modalities, :visibilities,
                    :first_starts, :counts, :minutes, :crisis_ids)
             AS p(rule_id, practitioner_id, territory_id, modality, visibility, first_start,
                  count, minutes, crisis_id),
             generate_series(0, p.count - 1) AS k
    ), inserted AS (
        INSERT INTO slot (id, practitioner_id, territory_id, rule_id, source, start, "end",
                          modality, visibility, status, crisis_id)
        SELECT gen_random_uuid(), w.practitioner_id, w.territory_id, w.rule_id, 'rule',
               w.start, w."end", w.modality, w.visibility,
               {status_on_insert("w")}, w.crisis_id
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
    bindparam("crisis_ids", type_=ARRAY(Uuid)),
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
    AvailabilityRule.crisis_id,
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
    columns: tuple[list[Any], ...] = ([], [], [], [], [], [], [], [], [])
    (
        rule_ids,
        practitioner_ids,
        territory_ids,
        modalities,
        visibilities,
        firsts,
        counts,
        mins,
        crisis_ids,
    ) = columns
    wanted = 0
    for rule in rules:
        tz = zone(rule.timezone)
        start = max(now, rule.materialized_until or now)
        step = timedelta(minutes=rule.slot_minutes)
        for period_start, period_end in expand_periods(rule_spec(rule), tz, start, horizon_end):
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
                crisis_ids.append(rule.crisis_id)
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
                "crisis_ids": crisis_ids,
            },
        )
        for row in result:
            created += row.slots
            if row.status == "free":  # slots born inside an unavailability are not on offer
                days = groups[(row.territory_id, row.practitioner_id, row.modality, row.visibility)]
                days[row.day] = {"slots": row.slots, "minutes": int(row.minutes)}
    await record_offer_days(session, "slots.offered", groups)
    return wanted, created


async def materialize_rules_now(
    session: AsyncSession, rule_ids: Sequence[uuid.UUID], *, now: datetime
) -> tuple[int, int]:
    """Materialise these rules to the horizon at once (a crisis' surge rules): their slots,
    an overlap with an existing slot skipped, and their offer events. Returns (wanted,
    created)."""
    horizon_end = now + timedelta(days=get_settings().horizon_days)
    rules = (
        await session.execute(
            select(*_LIVE_RULE_COLUMNS)
            .join(Practitioner, Practitioner.id == AvailabilityRule.practitioner_id)
            .join(Territory, Territory.id == Practitioner.territory_id)
            .where(AvailabilityRule.id.in_(rule_ids))
            .order_by(AvailabilityRule.id)
        )
    ).all()
    return await _materialize_rules(session, rules, now=now, horizon_end=horizon_end, progress=None)


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
