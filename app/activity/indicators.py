"""ACI indicators of the access-to-care mission, computed from the activity log alone.

Every figure is defined by end state: a slot counts once, in the period of its local day, at
its final state (net of withdrawals); a booking once, by its final status; an MT patient in the
criteria met at registration. Periods are local weeks, months, quarters or years (ACI years
when the territory's contract date is known) in the territory's zone, clipped to the requested
range. The definitions are in docs/indicators.md."""

from __future__ import annotations

import bisect
import uuid
from collections import defaultdict
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ARRAY, Date, Integer, String, TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from app.activity.crisis_figures import crisis_figures
from app.activity.mt_figures import CRITERIA as CRITERIA
from app.activity.mt_figures import MT_EVENTS_SQL, mt_figures
from app.activity.periods import Figures as Figures
from app.activity.periods import Granularity as Granularity
from app.activity.periods import aci_year_start as aci_year_start
from app.activity.periods import fill_rate as fill_rate
from app.activity.periods import next_period as next_period
from app.activity.periods import offer_units, per_1000, periods, ratio
from app.activity.periods import period_start as period_start
from app.activity.unmet_figures import unmet_figures

MODALITIES = ("cabinet", "visite", "teleconsultation")


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
        "lo": datetime.combine(first, time(), tz),
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
    await mt_figures(session, p, figures, buckets, ZoneInfo(tz_name), now, population)
    await unmet_figures(session, p, figures, tz_name)
    await crisis_figures(session, p, figures, tz_name)
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
