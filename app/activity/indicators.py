"""ACI indicators of the access-to-care mission, computed from the activity log alone.

Every figure is a sum over `activity_event`; periods are local weeks, months, quarters or years
in the territory's zone. The definitions are in docs/indicators.md."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Granularity = Literal["week", "month", "quarter", "year"]


def period_start(day: date, granularity: Granularity) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    if granularity == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def next_period(start: date, granularity: Granularity) -> date:
    if granularity == "week":
        return start + timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[granularity]
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, 1)


def periods(start: date, end: date, granularity: Granularity) -> list[tuple[date, date]]:
    out = []
    cursor = period_start(start, granularity)
    while cursor < end:
        following = next_period(cursor, granularity)
        out.append((cursor, following))
        cursor = following
    return out


@dataclass
class Figures:
    period_start: date
    period_end: date
    snp: dict[str, Any] = field(default_factory=dict)
    mt: dict[str, Any] = field(default_factory=dict)


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


# The offer, bookings and fill rate read the log's roll-ups (offer_period, booking_day,
# booked_slot_day: projections kept by a trigger in the events' own transaction, see
# app/activity/models.py); the MT figures read the log itself.

# SNP offer per period: net slots and minutes by the local day of the slots; a practitioner
# offers in a period when its net offer there is positive. Quarters and years sum months.
OFFER_SQL = """
WITH per_gp AS (
    SELECT date_trunc(:g, period_start)::date AS bucket, practitioner_id,
           sum(slots) AS slots, sum(minutes) AS minutes
    FROM offer_period
    WHERE territory_id = :t AND granularity = (CASE WHEN :g = 'week' THEN 'w' ELSE 'm' END)
      AND period_start >= :first AND period_start < :last
    GROUP BY 1, 2
)
SELECT bucket, sum(slots) AS slots, sum(minutes) AS minutes,
       count(*) FILTER (WHERE slots > 0) AS practitioners
FROM per_gp GROUP BY bucket
"""

# Bookings and their outcomes, by the local day they were made.
BOOKINGS_SQL = """
SELECT date_trunc(:g, day)::date AS bucket, type, nullif(modality, '') AS modality,
       sum(n) AS n, sum(within_24h) AS within_24h, sum(within_48h) AS within_48h,
       sum(was_booked) AS was_booked
FROM booking_day
WHERE territory_id = :t AND day >= :first AND day < :last
GROUP BY 1, 2, 3
"""

# Bookings by the local day of their slot, for the fill rate.
BOOKED_BY_SLOT_DAY_SQL = """
SELECT date_trunc(:g, day)::date, sum(n)
FROM booked_slot_day
WHERE territory_id = :t AND day >= :first AND day < :last
GROUP BY 1
"""

# MT: the queue's movements per period and priority, since the start of the log (queue sizes
# at a period's end are running sums); waiting times of the patients attached in each period;
# the capacity declarations (rare) in order.
MT_MOVES_SQL = """
SELECT date_trunc(:g, e.at AT TIME ZONE :tz)::date AS bucket,
       coalesce((e.data->>'priority')::int, 0) AS priority,
       count(*) FILTER (WHERE e.type = 'mt.registered') AS registered,
       count(*) FILTER (WHERE e.type = 'mt.attached') AS attached,
       count(*) FILTER (WHERE e.type = 'mt.withdrawn'
                          AND e.data->>'was' = 'attached') AS detached,
       count(*) FILTER (WHERE e.type = 'mt.withdrawn'
                          AND e.data->>'was' IS DISTINCT FROM 'attached') AS left_queue
FROM activity_event e
WHERE e.territory_id = :t AND e.at < :hi
  AND e.type IN ('mt.registered', 'mt.attached', 'mt.withdrawn')
GROUP BY 1, 2
ORDER BY 1, 2
"""

MT_WAITS_SQL = """
SELECT date_trunc(:g, e.at AT TIME ZONE :tz)::date AS bucket,
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY coalesce((e.data->>'waiting_days')::float, 0)) AS median,
       percentile_cont(0.9) WITHIN GROUP (
           ORDER BY coalesce((e.data->>'waiting_days')::float, 0)) AS p90
FROM activity_event e
WHERE e.territory_id = :t AND e.type = 'mt.attached' AND e.at >= :lo AND e.at < :hi
GROUP BY 1
"""

MT_CAPACITY_SQL = """
SELECT date_trunc(:g, e.at AT TIME ZONE :tz)::date AS bucket, e.practitioner_id,
       coalesce((e.data->>'capacity')::int, 0) AS capacity
FROM activity_event e
WHERE e.territory_id = :t AND e.at < :hi AND e.type = 'mt.capacity_set'
  AND e.practitioner_id IS NOT NULL
ORDER BY e.at, e.id
"""

QUERIES = {
    "offer": OFFER_SQL,
    "bookings": BOOKINGS_SQL,
    "booked_by_slot_day": BOOKED_BY_SLOT_DAY_SQL,
    "mt_moves": MT_MOVES_SQL,
    "mt_waits": MT_WAITS_SQL,
    "mt_capacity": MT_CAPACITY_SQL,
}


def query_params(
    territory_id: uuid.UUID, tz_name: str, granularity: Granularity, start: date, end: date
) -> tuple[list[tuple[date, date]], dict[str, Any]]:
    """The periods and the bind parameters shared by the queries (bench/indicators.py
    explains them with these)."""
    tz = ZoneInfo(tz_name)
    buckets = periods(start, end, granularity)
    first, last = buckets[0][0], buckets[-1][1]
    lo = datetime.combine(first, time(), tz)
    hi = datetime.combine(last, time(), tz)
    params = {"t": territory_id, "tz": tz_name, "g": granularity, "lo": lo, "hi": hi,
              "first": first, "last": last}  # fmt: skip
    return buckets, params


async def compute(
    session: AsyncSession,
    territory_id: uuid.UUID,
    tz_name: str,
    granularity: Granularity,
    start: date,
    end: date,
) -> list[Figures]:
    buckets, p = query_params(territory_id, tz_name, granularity, start, end)
    figures = {b: Figures(b, e) for b, e in buckets}

    # SNP offer: net slots and minutes per local day of the slot.
    offer = await session.execute(
        text(OFFER_SQL),
        p,
    )
    for bucket, slots, minutes, practitioners in offer:
        snp = figures[bucket].snp
        snp["slots_offered"] = int(slots)
        snp["hours_offered"] = round(int(minutes) / 60, 2)
        snp["practitioners_offering"] = int(practitioners)

    # Bookings, by the time they were made.
    bookings = await session.execute(
        text(BOOKINGS_SQL),
        p,
    )
    counts: dict[date, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    for bucket, type_, modality, n, within_24h, within_48h, was_booked in bookings:
        c = counts[bucket]
        if type_ == "booking.booked":
            c["booked"] += n
            c["within_24h"] += within_24h
            c["within_48h"] += within_48h
            c[f"modality:{modality}"] += n
        elif type_ == "booking.overbooked":
            c["overbooked"] += n
            c[f"modality:{modality}"] += n
        elif type_ == "booking.cancelled":
            c["cancelled"] += was_booked
        else:
            c[type_.removeprefix("booking.")] += n

    # Bookings by the local day of their slot, for the fill rate.
    by_slot_day: dict[date, int] = dict(
        (
            await session.execute(
                text(BOOKED_BY_SLOT_DAY_SQL),
                p,
            )
        ).all()
    )
    for bucket, period in figures.items():
        c = counts.get(bucket, {})
        s = period.snp
        s.setdefault("slots_offered", 0)
        s.setdefault("hours_offered", 0.0)
        s.setdefault("practitioners_offering", 0)
        booked = c.get("booked", 0)
        s["slots_booked_by_sas"] = booked
        s["booked_within_24h"] = c.get("within_24h", 0)
        s["booked_within_48h"] = c.get("within_48h", 0)
        s["fill_rate"] = _ratio(by_slot_day.get(bucket, 0), s["slots_offered"])
        s["overbooked"] = c.get("overbooked", 0)
        s["cancellations"] = c.get("cancelled", 0)
        s["honored"] = c.get("honored", 0)
        s["no_show"] = c.get("no_show", 0)
        s["no_show_rate"] = _ratio(s["no_show"], s["honored"] + s["no_show"])
        total = booked + s["overbooked"]
        s["modality_share"] = {
            m: _ratio(c.get(f"modality:{m}", 0), total)
            for m in ("cabinet", "visite", "teleconsultation")
        }

    await _mt(session, p, figures, buckets)
    return [figures[b] for b, _ in buckets]


async def _mt(
    session: AsyncSession,
    p: dict[str, Any],
    figures: dict[date, Figures],
    buckets: list[tuple[date, date]],
) -> None:
    """MT figures. Queue sizes and capacity at the end of each period are running sums of
    every movement since the start, so the queries read the whole history up to the last
    period, aggregated per period in SQL."""
    moves = (await session.execute(text(MT_MOVES_SQL), p)).all()
    waits = {r.bucket: r for r in (await session.execute(text(MT_WAITS_SQL), p)).all()}
    capacities = (await session.execute(text(MT_CAPACITY_SQL), p)).all()
    waiting: dict[int, int] = defaultdict(int)  # by priority
    attached_total = 0
    capacity: dict[uuid.UUID, int] = {}
    m = c = 0
    for start, _end in buckets:
        f = figures[start].mt
        registered = attached = fragile = 0
        while m < len(moves) and moves[m][0] <= start:
            bucket, priority, n_registered, n_attached, detached, left_queue = moves[m]
            m += 1
            waiting[priority] += n_registered - n_attached - left_queue
            attached_total += n_attached - detached
            if bucket == start:
                registered += n_registered
                attached += n_attached
                fragile += n_attached if priority > 0 else 0
        while c < len(capacities) and capacities[c][0] <= start:
            _, practitioner_id, value = capacities[c]
            c += 1
            capacity[practitioner_id] = value
        f["registered"] = registered
        f["attached"] = attached
        f["fragile_share_of_attached"] = _ratio(fragile, attached)
        period_waits = waits.get(start)
        f["waiting_days_median"] = round(period_waits.median, 1) if period_waits else None
        f["waiting_days_p90"] = round(period_waits.p90, 1) if period_waits else None
        f["waiting_at_end"] = sum(waiting.values())
        f["waiting_at_end_by_priority"] = {str(k): waiting.get(k, 0) for k in range(4)}
        f["remaining_capacity_at_end"] = sum(capacity.values()) - attached_total


# Indicators a contract can set a yearly target on: the additive ones (summed over a year).
TARGETABLE = {
    "snp.slots_offered": ("snp", "slots_offered"),
    "snp.hours_offered": ("snp", "hours_offered"),
    "snp.slots_booked_by_sas": ("snp", "slots_booked_by_sas"),
    "snp.booked_within_48h": ("snp", "booked_within_48h"),
    "snp.overbooked": ("snp", "overbooked"),
    "mt.registered": ("mt", "registered"),
    "mt.attached": ("mt", "attached"),
}


def progress(figures: list[Figures], targets: dict[tuple[int, str], float]) -> list[dict[str, Any]]:
    """For each target of a year the figures cover: the value so far in the requested range
    and the share of the target reached."""
    out = []
    for (year, indicator), target in sorted(targets.items()):
        section, name = TARGETABLE[indicator]
        in_year = [f for f in figures if f.period_start.year == year]
        if not in_year:
            continue
        actual = sum(float(getattr(f, section).get(name) or 0) for f in in_year)
        out.append(
            {
                "indicator": indicator,
                "year": year,
                "target": target,
                "actual": round(actual, 2),
                "progress": _ratio(actual, target),
            }
        )
    return out
