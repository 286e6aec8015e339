"""ACI indicators of the access-to-care mission, computed from the activity log alone.

Every figure is defined by end state: a slot counts once, in the period of its local day, at
its final state (net of withdrawals); a booking once, by its final status; an MT patient in the
criteria met at registration. Periods are local weeks, months, quarters or years (ACI years
when the territory's contract date is known) in the territory's zone, clipped to the requested
range. The definitions are in docs/indicators.md."""

from __future__ import annotations

import bisect
import calendar
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ARRAY, Date, Integer, String, TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

Granularity = Literal["week", "month", "quarter", "year"]
MODALITIES = ("cabinet", "visite", "teleconsultation")
CRITERIA = ("ald", "aged_70", "precarity")
# The criteria of each bit mask (1: ALD, 2: 70 or over, 4: precarity).
CRITERIA_SETS = [tuple(c for k, c in enumerate(CRITERIA) if mask >> k & 1) for mask in range(8)]


# Periods -----------------------------------------------------------------------------------


def anniversary(year: int, signed_on: date) -> date:
    """The contract's anniversary in `year` (28 February for a 29 February signature)."""
    day = min(signed_on.day, calendar.monthrange(year, signed_on.month)[1])
    return date(year, signed_on.month, day)


def aci_year_start(day: date, signed_on: date | None) -> date:
    """The first day of the indicator year holding `day`: the last anniversary of the ACI
    contract's signature, or 1 January when the date is unknown."""
    if signed_on is None:
        return date(day.year, 1, 1)
    this_year = anniversary(day.year, signed_on)
    return this_year if this_year <= day else anniversary(day.year - 1, signed_on)


def period_start(day: date, granularity: Granularity, signed_on: date | None = None) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    if granularity == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return aci_year_start(day, signed_on)


def _add_months(start: date, months: int) -> date:
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, 1)


def next_period(start: date, granularity: Granularity, signed_on: date | None = None) -> date:
    if granularity == "week":
        return start + timedelta(days=7)
    if granularity == "year":
        if signed_on is None:
            return date(start.year + 1, 1, 1)
        return anniversary(start.year + 1, signed_on)
    return _add_months(start, {"month": 1, "quarter": 3}[granularity])


def periods(
    start: date, end: date, granularity: Granularity, signed_on: date | None = None
) -> list[tuple[date, date]]:
    """The periods of [start, end), the first and last clipped to the range: a range that
    ends on 4 December ends its last period there."""
    out = []
    cursor = period_start(start, granularity, signed_on)
    while cursor < end:
        following = next_period(cursor, granularity, signed_on)
        out.append((max(cursor, start), min(following, end)))
        cursor = following
    return out


def offer_units(first: date, last: date, granularity: Granularity) -> list[tuple[str, date]]:
    """[first, last) as units of the offer roll-up: whole weeks (`w`) for weeks, whole months
    (`m`) for longer periods, local days (`d`) for what is left at clipped ends."""
    units: list[tuple[str, date]] = []
    cursor = first
    while cursor < last:
        if granularity == "week" and cursor.weekday() == 0 and cursor + timedelta(7) <= last:
            units.append(("w", cursor))
            cursor += timedelta(days=7)
        elif granularity != "week" and cursor.day == 1 and _add_months(cursor, 1) <= last:
            units.append(("m", cursor))
            cursor = _add_months(cursor, 1)
        else:
            units.append(("d", cursor))
            cursor += timedelta(days=1)
    return units


@dataclass
class Figures:
    period_start: date
    period_end: date
    snp: dict[str, Any] = field(default_factory=dict)
    mt: dict[str, Any] = field(default_factory=dict)


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def fill_rate(taken: int, offered: int) -> float | None:
    """Distinct slots taken ÷ slots offered, never above 1 (a slot withdrawn after it was
    held and then booked is taken but no longer offered). The one formula of the JSON, the
    CSV and the dashboard."""
    return ratio(min(taken, offered), offered)


def per_1000(value: float, population: int | None) -> float | None:
    return round(value * 1000 / population, 3) if population else None


# Queries -----------------------------------------------------------------------------------

# The offer per requested period, practitioner and audience: offer_period rows of the units
# (whole weeks or months, days at clipped ends) of each period, an equality join.
OFFER_SQL = """
WITH per_gp AS (
    SELECT u.i, o.practitioner_id,
           sum(o.slots) FILTER (WHERE o.audience = 'sas') AS sas,
           sum(o.slots) FILTER (WHERE o.audience = 'cpts') AS cpts,
           sum(o.minutes) AS minutes
    FROM unnest(:unit_granularities, :unit_starts, :unit_periods) AS u(g, s, i)
         JOIN offer_period o ON o.territory_id = :t AND o.granularity = u.g
                            AND o.period_start = u.s
    GROUP BY 1, 2
)
SELECT i AS period, coalesce(sum(sas), 0) AS sas, coalesce(sum(cpts), 0) AS cpts,
       sum(minutes) AS minutes,
       count(*) FILTER (WHERE coalesce(sas, 0) + coalesce(cpts, 0) > 0) AS practitioners
FROM per_gp GROUP BY i
"""
OFFER_BINDS = (
    bindparam("unit_granularities", type_=ARRAY(String)),
    bindparam("unit_starts", type_=ARRAY(Date)),
    bindparam("unit_periods", type_=ARRAY(Integer)),
    bindparam("t", type_=Uuid),
)


def statement(sql: str) -> TextClause:
    """One of the queries below, with the types of its array parameters."""
    return text(sql).bindparams(*OFFER_BINDS) if ":unit_periods" in sql else text(sql)


# Bookings at their final status (booking_state), summed per local day by the trigger in
# booking_day: by the day they were (last) booked and modality (`made`: booked,
# surnuméraires, within 24 / 48 h, standing), by the appointment's day (`start`: slots taken,
# outcomes) and by the cancellation's day (`ended`). Standing: booked, honored or no-show;
# seen or expected: booked or honored.
BOOKINGS_SQL = """
SELECT d.day, d.kind, d.modality, sum(d.booked) AS booked, sum(d.overbooked) AS overbooked,
       sum(d.within_24h) AS within_24h, sum(d.within_48h) AS within_48h,
       sum(d.standing) AS standing, sum(d.honored) AS honored, sum(d.no_show) AS no_show,
       sum(d.cancelled) AS cancelled
FROM booking_day d
WHERE d.territory_id = :t AND d.day >= :first AND d.day < :last
GROUP BY 1, 2, 3
"""
# MT: every queue and capacity event up to the last period's end, in order.
MT_EVENTS_SQL = """
SELECT e.type, e.at, e.subject_id, e.practitioner_id,
       coalesce((e.data->>'priority')::int, 0) AS priority,
       (CASE WHEN (e.data->>'ald')::boolean THEN 1 ELSE 0 END
        + CASE WHEN (e.data->>'aged_70')::boolean THEN 2 ELSE 0 END
        + CASE WHEN (e.data->>'precarity')::boolean THEN 4 ELSE 0 END) AS criteria,
       (e.data->>'capacity')::int AS capacity,
       (e.data->>'waiting_days')::float AS waiting_days
FROM activity_event e
WHERE e.territory_id = :t AND e.at < :hi
  AND e.type IN ('mt.registered', 'mt.attached', 'mt.withdrawn', 'mt.capacity_set',
                 'practitioner.deleted')
ORDER BY e.at, e.id
"""

QUERIES = {
    "offer": OFFER_SQL,
    "bookings": BOOKINGS_SQL,
    "mt_events": MT_EVENTS_SQL,
}


def query_params(
    territory_id: uuid.UUID,
    tz_name: str,
    granularity: Granularity,
    start: date,
    end: date,
    signed_on: date | None = None,
) -> tuple[list[tuple[date, date]], dict[str, Any]]:
    """The periods and the bind parameters shared by the queries (bench/indicators.py
    explains them with these)."""
    tz = ZoneInfo(tz_name)
    buckets = periods(start, end, granularity, signed_on)
    first, last = buckets[0][0], buckets[-1][1]
    unit_g, unit_s, unit_i = [], [], []
    for i, (b_start, b_end) in enumerate(buckets):
        for g, s in offer_units(b_start, b_end, granularity):
            unit_g.append(g)
            unit_s.append(s)
            unit_i.append(i)
    params = {
        "t": territory_id,
        "first": first,
        "last": last,
        "hi": datetime.combine(last, time(), tz),
        "unit_granularities": unit_g,
        "unit_starts": unit_s,
        "unit_periods": unit_i,
    }
    return buckets, params


class _DayBuckets:
    """Maps a local day to the index of its period."""

    def __init__(self, buckets: list[tuple[date, date]]) -> None:
        self.starts = [b[0] for b in buckets]
        self.last = buckets[-1][1]

    def __call__(self, day: date) -> int | None:
        if day < self.starts[0] or day >= self.last:
            return None
        return bisect.bisect_right(self.starts, day) - 1


async def compute(
    session: AsyncSession,
    territory_id: uuid.UUID,
    tz_name: str,
    granularity: Granularity,
    start: date,
    end: date,
    *,
    now: datetime,
    population: int | None = None,
    signed_on: date | None = None,
) -> list[Figures]:
    """The figures of each period of [start, end). `now` bounds the "at end" figures of a
    period not yet over (the queue as it stands, waiting times so far)."""
    buckets, p = query_params(territory_id, tz_name, granularity, start, end, signed_on)
    figures = [Figures(b, e) for b, e in buckets]
    await _snp(session, p, figures, buckets, population)
    await _mt(session, p, figures, buckets, ZoneInfo(tz_name), now, population)
    return figures


async def _snp(
    session: AsyncSession,
    p: dict[str, Any],
    figures: list[Figures],
    buckets: list[tuple[date, date]],
    population: int | None,
) -> None:
    offer: list[Any] = [None] * len(buckets)
    for row in await session.execute(statement(OFFER_SQL), p):
        offer[row.period] = row

    bucket_of = _DayBuckets(buckets)
    counts: list[dict[str, int]] = [defaultdict(int) for _ in buckets]
    for row in await session.execute(text(BOOKINGS_SQL), p):
        i = bucket_of(row.day)
        if i is None:
            continue
        c = counts[i]
        if row.kind == "made":
            for name in ("booked", "overbooked", "within_24h", "within_48h", "standing"):
                c[name] += getattr(row, name)
            c[f"modality:{row.modality}"] += row.standing
        elif row.kind == "start":
            c["taken"] += row.booked
            c["honored"] += row.honored
            c["no_show"] += row.no_show
        else:
            c["cancelled"] += row.cancelled

    for i, f in enumerate(figures):
        c, s = counts[i], f.snp
        sas, cpts, minutes, gps = (
            (int(offer[i].sas), int(offer[i].cpts), int(offer[i].minutes),
             int(offer[i].practitioners))
            if offer[i] is not None else (0, 0, 0, 0)
        )  # fmt: skip
        offered = sas + cpts
        weeks = (f.period_end - f.period_start).days / 7
        s["slots_offered"] = offered
        s["slots_offered_sas"] = sas
        s["slots_offered_cpts"] = cpts
        s["hours_offered"] = round(minutes / 60, 2)
        s["practitioners_offering"] = gps
        s["hours_per_gp_per_week"] = round(minutes / 60 / gps / weeks, 2) if gps else None
        s["slots_taken"] = c["taken"]
        s["fill_rate"] = fill_rate(c["taken"], offered)
        s["slots_booked_by_sas"] = c["booked"]
        s["booked_within_24h"] = c["within_24h"]
        s["booked_within_48h"] = c["within_48h"]
        s["overbooked"] = c["overbooked"]
        s["cancellations"] = c["cancelled"]
        s["honored"] = c["honored"]
        s["no_show"] = c["no_show"]
        s["no_show_rate"] = ratio(c["no_show"], c["honored"] + c["no_show"])
        s["modality_share"] = {m: ratio(c[f"modality:{m}"], c["standing"]) for m in MODALITIES}
        s["per_1000_inhabitants"] = {
            name: per_1000(s[name], population)
            for name in ("slots_offered_sas", "slots_booked_by_sas", "booked_within_48h")
        }


@dataclass
class _Request:
    registered_at: datetime
    priority: int
    criteria: tuple[str, ...]
    state: str = "waiting"
    practitioner_id: uuid.UUID | None = None


def _percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (position - low), 1)


async def _mt(
    session: AsyncSession,
    p: dict[str, Any],
    figures: list[Figures],
    buckets: list[tuple[date, date]],
    tz: ZoneInfo,
    now: datetime,
    population: int | None,
) -> None:
    """MT figures, replaying the queue and capacity events in order. A patient keeps the
    priority and criteria met at registration, so entering and leaving the queue always
    count in the same row; "at end" figures are taken at the period's end, or now for a
    period not yet over."""
    events = (await session.execute(text(MT_EVENTS_SQL), p)).all()
    requests: dict[uuid.UUID, _Request] = {}
    queue = _Queue()
    capacity: dict[uuid.UUID, int] = {}
    attached_to: dict[uuid.UUID, int] = defaultdict(int)
    e = 0
    for f, (b_start, b_end) in zip(figures, buckets, strict=True):
        lo = datetime.combine(b_start, time(), tz)
        hi = datetime.combine(b_end, time(), tz)
        registered = attached = fragile = 0
        by_criterion = {c: {"registered": 0, "attached": 0} for c in CRITERIA}
        waits: list[float] = []
        while e < len(events) and events[e][1] < hi:
            type_, at, subject, gp, priority, mask, cap, waited = events[e]
            e += 1
            in_period = at >= lo
            if type_ == "mt.capacity_set":
                if gp is not None:
                    capacity[gp] = cap or 0
            elif type_ == "practitioner.deleted":
                capacity.pop(gp, None)
            elif subject is None:
                continue
            elif type_ == "mt.registered":
                r = requests[subject] = _Request(at, priority, CRITERIA_SETS[mask])
                queue.enter(r)
                if in_period:
                    registered += 1
                    for c in r.criteria:
                        by_criterion[c]["registered"] += 1
            elif type_ == "mt.attached":
                r = requests.get(subject) or _unregistered(
                    requests, subject, at, priority, mask, waited
                )
                if r.state == "waiting":
                    queue.leave(r)
                r.state, r.practitioner_id = "attached", gp
                if gp is not None:
                    attached_to[gp] += 1
                if in_period:
                    attached += 1
                    fragile += 1 if r.priority > 0 else 0
                    for c in r.criteria:
                        by_criterion[c]["attached"] += 1
                    waits.append((at - r.registered_at).total_seconds() / 86400)
            elif type_ == "mt.withdrawn" and subject in requests:
                r = requests[subject]
                if r.state == "waiting":
                    queue.leave(r)
                elif r.state == "attached" and r.practitioner_id is not None:
                    attached_to[r.practitioner_id] -= 1
                r.state = "withdrawn"
        as_of = min(hi, now)
        m = f.mt
        m["registered"] = registered
        m["attached"] = attached
        m["fragile_share_of_attached"] = ratio(fragile, attached)
        m["waiting_days_median"] = _percentile(waits, 0.5)
        m["waiting_days_p90"] = _percentile(waits, 0.9)
        m["waiting_at_end"] = len(queue.since)
        m["waiting_at_end_by_priority"] = {str(k): queue.by_priority[k] for k in range(4)}
        m["still_waiting_days_median"] = queue.waited(as_of, 0.5)
        m["still_waiting_days_p90"] = queue.waited(as_of, 0.9)
        m["still_waiting_days_oldest"] = queue.waited(as_of, 1.0)
        m["remaining_capacity_at_end"] = sum(
            max(0, cap - attached_to[gp]) for gp, cap in capacity.items()
        )
        for c in CRITERIA:
            by_criterion[c]["waiting_at_end"] = queue.by_criterion[c]
        m["by_criterion"] = by_criterion
        m["per_1000_inhabitants"] = {
            name: per_1000(m[name], population)
            for name in ("registered", "attached", "waiting_at_end")
        }


class _Queue:
    """The patients waiting: their registration instants (sorted) and counts by priority and
    criterion at registration."""

    def __init__(self) -> None:
        self.since: list[datetime] = []
        self.by_priority: dict[int, int] = defaultdict(int)
        self.by_criterion: dict[str, int] = defaultdict(int)

    def enter(self, r: _Request) -> None:
        bisect.insort(self.since, r.registered_at)
        self._count(r, 1)

    def leave(self, r: _Request) -> None:
        i = bisect.bisect_left(self.since, r.registered_at)
        if i < len(self.since) and self.since[i] == r.registered_at:
            self.since.pop(i)
            self._count(r, -1)

    def _count(self, r: _Request, n: int) -> None:
        self.by_priority[r.priority] += n
        for c in r.criteria:
            self.by_criterion[c] += n

    def waited(self, as_of: datetime, q: float) -> float | None:
        """The q-quantile of the days waited so far (1.0: the oldest), interpolated like
        percentile_cont; the longest wait is the earliest registration."""
        if not self.since:
            return None
        position = (1 - q) * (len(self.since) - 1)
        low = int(position)
        high = min(low + 1, len(self.since) - 1)
        first, second = self.since[low], self.since[high]
        instant = first + (second - first) * (position - low)
        return round(max(0.0, (as_of - instant).total_seconds() / 86400), 1)


def _unregistered(
    requests: dict[uuid.UUID, _Request],
    subject: uuid.UUID,
    at: datetime,
    priority: int,
    mask: int,
    waited: float | None,
) -> _Request:
    """A patient attached without a registration in the log (history imported before the
    log began): registered `waiting_days` earlier, never in this log's queue."""
    since = at - timedelta(days=waited or 0)
    r = requests[subject] = _Request(since, priority, CRITERIA_SETS[mask], state="outside")
    return r


# Indicators a contract can set a yearly target on: the additive ones (summed over a year).
TARGETABLE = {
    "snp.slots_offered": ("snp", "slots_offered"),
    "snp.slots_offered_sas": ("snp", "slots_offered_sas"),
    "snp.hours_offered": ("snp", "hours_offered"),
    "snp.slots_booked_by_sas": ("snp", "slots_booked_by_sas"),
    "snp.booked_within_48h": ("snp", "booked_within_48h"),
    "snp.overbooked": ("snp", "overbooked"),
    "mt.registered": ("mt", "registered"),
    "mt.attached": ("mt", "attached"),
}


def progress(
    figures: list[Figures],
    targets: dict[tuple[int, str], float],
    signed_on: date | None = None,
) -> list[dict[str, Any]]:
    """For each target of an indicator year the figures cover (the ACI year starting in
    that calendar year, or the calendar year): the value so far in the requested range and
    the share of the target reached."""
    out = []
    for (year, indicator), target in sorted(targets.items()):
        section, name = TARGETABLE[indicator]
        in_year = [f for f in figures if aci_year_start(f.period_start, signed_on).year == year]
        if not in_year:
            continue
        actual = sum(float(getattr(f, section).get(name) or 0) for f in in_year)
        out.append(
            {
                "indicator": indicator,
                "year": year,
                "target": target,
                "actual": round(actual, 2),
                "progress": ratio(actual, target),
            }
        )
    return out
