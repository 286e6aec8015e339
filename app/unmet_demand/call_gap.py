"""Where a call for slots should land: the hour of its window where the SAS offer is thinnest.

The link of a call (app.unmet_demand.call_links) prefills the called GP's one-off slot form.
The hour it proposes is the first whole local hour (the territory's zone) of the call's window
(`sent_at` to `sent_at + window_hours`, and at least an hour from now) that

- lies within the GP's hours: the local hours of their availability rules in force and, when
  they accept surnuméraires, their surnuméraire hours; 08:00-20:00 when neither is known;
- holds no slot of the GP's and no absence of theirs;
- has the fewest free SAS slots in the territory (the search's availability predicate,
  `app.scheduling.queries.bookable`, on `sas` and `public` slots starting in the hour);
  ties go to the earliest.

Clock changes: an hour that does not exist (spring forward) is never proposed; a repeated
hour (fall back) is one candidate, from its first occurrence to the next local hour, so its
slots are counted once. The hours' counts are one SQL statement over the candidate hours.
No hour qualifies (a window that has passed, a GP absent throughout): `None`, and the page
proposes the first whole hour at least an hour ahead, as before."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ARRAY,
    DateTime,
    Integer,
    Select,
    bindparam,
    column,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from app.activity.models import ActivityEvent
from app.directory.models import Practitioner
from app.scheduling.models import AvailabilityRule, Slot, Unavailability
from app.scheduling.queries import SAS_AUDIENCE, bookable
from app.scheduling.rules import local_instant
from app.unmet_demand.models import SlotCall

DEFAULT_WINDOW_HOURS = 48  # the floor's default window (SlotCallFloor.window_hours)
DAYTIME = frozenset(range(8, 20))  # 08:00-20:00 local, when the GP's hours are unknown
LEAD = timedelta(hours=1)  # time for the practice to publish and the SAS to book
SLOT_MINUTES = 30  # the slot's length when the GP has no rule
MAX_SLOT_MINUTES = 60  # the prefilled slot stays inside the hour that was checked


@dataclass(frozen=True)
class Gap:
    """The proposed hour: its instants and the free SAS slots of the territory in it."""

    start: datetime
    end: datetime
    free_slots: int


@dataclass(frozen=True)
class GpHours:
    """The local hours of the day (0-23) the GP works, and their usual slot length."""

    hours: frozenset[int]
    slot_minutes: int


def hours_between(start: time, end: time) -> set[int]:
    """The local hours of the day that [start, end) overlaps; an end at or before the start
    runs to the next day (an overnight rule, surnuméraires until the morning)."""
    first = start.hour
    last = end.hour + (1 if (end.minute, end.second) != (0, 0) else 0)  # exclusive
    if end <= start:
        last += 24
    return {h % 24 for h in range(first, last)}


def gp_hours(gp: Practitioner, rules: list[tuple[time, time, int]]) -> GpHours:
    """The GP's hours: those of their rules (start, end, slot length) and, when they accept
    surnuméraires, their surnuméraire hours; daytime when neither gives any."""
    hours: set[int] = set()
    for start, end, _ in rules:
        hours |= hours_between(start, end)
    if gp.accepts_overbooking:
        hours |= hours_between(gp.overbooking_start_time, gp.overbooking_end_time)
    lengths = Counter(minutes for _, _, minutes in rules)
    usual = min(lengths.most_common(1)[0][0], MAX_SLOT_MINUTES) if lengths else SLOT_MINUTES
    return GpHours(frozenset(hours) or DAYTIME, usual)


def local_hours(first: datetime, until: datetime, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """The whole local hours starting in [first, until), as (start, end) instants in UTC.
    An hour skipped by the clocks does not exist and is left out; a repeated hour is one,
    from its first occurrence to the next local hour (two hours of elapsed time)."""
    out: list[tuple[datetime, datetime]] = []
    day: date = first.astimezone(tz).date()
    while True:
        for h in range(24):
            start = local_instant(day, time(h), tz)
            if start >= until:
                return out
            if start < first or start.astimezone(tz).hour != h:  # before, or skipped
                continue
            following = (day + timedelta(days=1), time()) if h == 23 else (day, time(h + 1))
            out.append((start, local_instant(*following, tz)))
        day += timedelta(days=1)


async def window_hours(session: AsyncSession, call: SlotCall) -> int:
    """The window the call was sent for (its `slots.call_sent` event), else the default."""
    hours = await session.scalar(
        select(ActivityEvent.data["window_hours"].as_integer()).where(
            ActivityEvent.territory_id == call.territory_id,
            ActivityEvent.type == "slots.call_sent",
            ActivityEvent.subject_id == call.id,
        )
    )
    return int(hours) if hours else DEFAULT_WINDOW_HOURS


async def read_gp_hours(
    session: AsyncSession, gp: Practitioner, first: date, last: date
) -> GpHours:
    """The GP's hours from their rules in force over [first, last] (crisis rules left out:
    they are surge capacity, not the GP's hours)."""
    rules = await session.execute(
        select(AvailabilityRule.start_time, AvailabilityRule.end_time,
               AvailabilityRule.slot_minutes)
        .where(
            AvailabilityRule.practitioner_id == gp.id,
            AvailabilityRule.crisis_id.is_(None),
            AvailabilityRule.valid_from <= last,
            or_(AvailabilityRule.valid_until.is_(None), AvailabilityRule.valid_until >= first),
        )
    )  # fmt: skip
    return gp_hours(gp, [(s, e, m) for s, e, m in rules.all()])


def _gap_statement(now: datetime) -> Select[tuple[datetime, datetime, int]]:
    """The candidate hours without a slot or an absence of the GP's, the fewest free SAS
    slots first, then the earliest: one statement over the arrays of starts and ends."""
    instants = ARRAY(DateTime(timezone=True))
    hour = (
        func.unnest(bindparam("starts", type_=instants), bindparam("ends", type_=instants))
        .table_valued(column("s", DateTime(timezone=True)), column("e", DateTime(timezone=True)))
        .render_derived(name="h")
    )
    territory_id = bindparam("territory_id", type_=Uuid)
    gp_id = bindparam("gp_id", type_=Uuid)
    free = (
        select(func.count())
        .where(
            Slot.territory_id == territory_id,
            Slot.visibility.in_(SAS_AUDIENCE),
            Slot.start >= hour.c.s,
            Slot.start < hour.c.e,
            bookable(now),
        )
        .scalar_subquery()
    )
    own = exists().where(Slot.practitioner_id == gp_id, Slot.start < hour.c.e,
                         Slot.end > hour.c.s)  # fmt: skip
    absent = exists().where(
        Unavailability.practitioner_id == gp_id,
        Unavailability.start < hour.c.e,
        Unavailability.end > hour.c.s,
    )
    counted = select(hour.c.s, hour.c.e, free.label("free")).where(~own, ~absent).subquery()
    return (
        select(counted.c.s, counted.c.e, counted.c.free.cast(Integer).label("free"))
        .order_by(counted.c.free, counted.c.s)
        .limit(1)
    )


async def find_gap(
    session: AsyncSession,
    call: SlotCall,
    gp: Practitioner,
    tz: ZoneInfo,
    now: datetime,
    hours: GpHours,
    window: int,
) -> Gap | None:
    """The hour of the call's window to propose to its GP, or None when none qualifies."""
    until = call.sent_at + timedelta(hours=window)
    first = max(call.sent_at, now + LEAD)
    candidates = [
        (s, e) for s, e in local_hours(first, until, tz) if s.astimezone(tz).hour in hours.hours
    ]
    if not candidates:
        return None
    row = (
        await session.execute(
            _gap_statement(now),
            {
                "starts": [s for s, _ in candidates],
                "ends": [e for _, e in candidates],
                "territory_id": call.territory_id,
                "gp_id": gp.id,
            },
        )
    ).first()
    if row is None:
        return None
    return Gap(row.s.astimezone(UTC), row.e.astimezone(UTC), int(row.free))


@dataclass(frozen=True)
class Prefill:
    """What the form is prefilled with: the slot's start and length, and the gap (None:
    the fallback, the first whole hour at least an hour ahead)."""

    start: datetime
    minutes: int
    gap: Gap | None


def fallback_start(now: datetime, tz: ZoneInfo) -> datetime:
    """The first whole local hour at least an hour from now (the link's first proposal)."""
    local = (now + LEAD).astimezone(tz)
    return local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


async def prefill(
    session: AsyncSession, call: SlotCall, gp: Practitioner, tz: ZoneInfo, now: datetime
) -> Prefill:
    """The slot the link's form proposes to the called GP."""
    window = await window_hours(session, call)
    until = call.sent_at + timedelta(hours=window)
    hours = await read_gp_hours(
        session, gp, call.sent_at.astimezone(tz).date(), until.astimezone(tz).date()
    )
    gap = await find_gap(session, call, gp, tz, now, hours, window)
    start = gap.start if gap is not None else fallback_start(now, tz)
    return Prefill(start, hours.slot_minutes, gap)
