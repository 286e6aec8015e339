"""ACI indicators of the access-to-care mission, computed from the activity log alone.

Every figure is a sum over `activity_event`; periods are local weeks, months, quarters or years
in the territory's zone. The definitions are in docs/indicators.md."""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Granularity = Literal["week", "month", "quarter", "year"]
# Offer events are written up to the materialisation horizon before the day they describe.
_OFFER_LOOKBACK = timedelta(days=92)


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


async def compute(
    session: AsyncSession,
    territory_id: uuid.UUID,
    tz_name: str,
    granularity: Granularity,
    start: date,
    end: date,
) -> list[Figures]:
    tz = ZoneInfo(tz_name)
    buckets = periods(start, end, granularity)
    first, last = buckets[0][0], buckets[-1][1]
    lo = datetime.combine(first, time(), tz)
    hi = datetime.combine(last, time(), tz)
    p = {"t": territory_id, "tz": tz_name, "g": granularity, "lo": lo, "hi": hi,
         "first": first, "last": last, "lookback": lo - _OFFER_LOOKBACK}  # fmt: skip
    figures = {b: Figures(b, e) for b, e in buckets}

    # SNP offer: net slots and minutes per local day of the slot, from the offer ledger's
    # daily roll-up (a projection of the log's slots.offered / slots.withdrawn events).
    offer = await session.execute(
        text(
            """
            WITH per_gp AS (
                SELECT date_trunc(:g, day)::date AS bucket, practitioner_id,
                       sum(slots) AS slots, sum(minutes) AS minutes
                FROM offer_day
                WHERE territory_id = :t AND day >= :first AND day < :last
                GROUP BY 1, 2
            )
            SELECT bucket, sum(slots) AS slots, sum(minutes) AS minutes,
                   count(*) FILTER (WHERE slots > 0) AS practitioners
            FROM per_gp GROUP BY bucket
            """
        ),
        p,
    )
    for bucket, slots, minutes, practitioners in offer:
        snp = figures[bucket].snp
        snp["slots_offered"] = int(slots)
        snp["hours_offered"] = round(int(minutes) / 60, 2)
        snp["practitioners_offering"] = int(practitioners)

    # Bookings, by the time they were made.
    bookings = await session.execute(
        text(
            """
            SELECT date_trunc(:g, e.at AT TIME ZONE :tz)::date AS bucket, e.type,
                   e.data->>'modality' AS modality, count(*) AS n,
                   count(*) FILTER (WHERE (e.data->>'lead_minutes')::int <= 1440) AS within_24h,
                   count(*) FILTER (WHERE (e.data->>'lead_minutes')::int <= 2880) AS within_48h,
                   count(*) FILTER (WHERE e.data->>'was' = 'booked') AS was_booked
            FROM activity_event e
            WHERE e.territory_id = :t AND e.at >= :lo AND e.at < :hi
              AND e.type IN ('booking.booked', 'booking.overbooked', 'booking.cancelled',
                             'booking.honored', 'booking.no_show')
            GROUP BY 1, 2, 3
            """
        ),
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
                text(
                    """
                    SELECT date_trunc(:g, (e.data->>'start')::timestamptz AT TIME ZONE :tz)::date,
                           count(*)
                    FROM activity_event e
                    WHERE e.territory_id = :t AND e.type = 'booking.booked'
                      AND e.at >= :lookback AND e.at < :hi
                      AND (e.data->>'start')::timestamptz >= :lo
                      AND (e.data->>'start')::timestamptz < :hi
                    GROUP BY 1
                    """
                ),
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
    every event since the start, so the query reads the whole history up to the last period."""
    rows = (
        await session.execute(
            text(
                """
                SELECT e.at, date_trunc(:g, e.at AT TIME ZONE :tz)::date AS bucket, e.type,
                       e.practitioner_id, e.data
                FROM activity_event e
                WHERE e.territory_id = :t AND e.at < :hi
                  AND e.type IN ('mt.registered', 'mt.attached', 'mt.withdrawn',
                                 'mt.capacity_set')
                ORDER BY e.at, e.id
                """
            ),
            p,
        )
    ).all()
    waiting: dict[int, int] = defaultdict(int)  # by priority
    attached_total = 0
    capacity: dict[uuid.UUID, int] = {}
    index = 0
    for start, _end in buckets:
        f = figures[start].mt
        registered = attached = fragile = 0
        waits: list[float] = []
        while index < len(rows) and rows[index].bucket <= start:
            r = rows[index]
            index += 1
            data = r.data
            priority = int(data.get("priority", 0))
            in_period = r.bucket == start
            if r.type == "mt.registered":
                waiting[priority] += 1
                registered += in_period
            elif r.type == "mt.attached":
                waiting[priority] -= 1
                attached_total += 1
                if in_period:
                    attached += 1
                    fragile += priority > 0
                    waits.append(float(data.get("waiting_days", 0)))
            elif r.type == "mt.withdrawn":
                if data.get("was") == "attached":
                    attached_total -= 1
                else:
                    waiting[priority] -= 1
            elif r.practitioner_id is not None:
                capacity[r.practitioner_id] = int(data.get("capacity", 0))
        f["registered"] = registered
        f["attached"] = attached
        f["fragile_share_of_attached"] = _ratio(fragile, attached)
        f["waiting_days_median"] = round(statistics.median(waits), 1) if waits else None
        f["waiting_days_p90"] = (
            round(statistics.quantiles(waits, n=10, method="inclusive")[-1], 1)
            if len(waits) > 1
            else (round(waits[0], 1) if waits else None)
        )
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
