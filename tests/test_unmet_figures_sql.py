"""Property: the unmet section counted per period in SQL (app.activity.unmet_figures) equals
the previous Python recount (its rows per local day and hour, put in their periods by
`period_of`), on random logs spread over weeks, months, quarters and ACI years, events at
local midnights and on the nights the clocks change, communes missing or empty."""

from __future__ import annotations

import copy
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, text

from app.activity import indicators
from app.activity.models import ActivityEvent
from app.activity.periods import Figures, period_of
from app.activity.unmet_figures import HOURS, PRODUCED_SQL, REASONS, unmet_figures
from tests.test_indicators_property import PARIS

# The previous implementation's queries: rows per local day, hour, type, reason, commune;
# a row per call.
OLD_UNMET_SQL = """
SELECT (e.at AT TIME ZONE :tz)::date AS day,
       extract(hour FROM e.at AT TIME ZONE :tz)::int AS hour,
       e.type, e.data->>'reason' AS reason, e.data->>'commune_insee' AS commune, count(*) AS n
FROM activity_event e
WHERE e.territory_id = :t AND e.type IN ('unmet.recorded', 'unmet.empty_search')
  AND e.at >= :lo AND e.at < :hi
GROUP BY 1, 2, 3, 4, 5
"""
OLD_CALLS_SQL = PRODUCED_SQL.replace(
    "{calls}",
    "SELECT c.id AS key, c.id AS eid, c.at, c.practitioner_id, "
    "(c.at AT TIME ZONE :tz)::date AS day "
    "FROM activity_event c WHERE c.territory_id = :t AND c.type = 'slots.call_sent' "
    "AND c.at >= :lo AND c.at < :hi",
)


async def python_recount(session, p: dict[str, Any], figures: list[Figures], tz: str) -> None:
    """The previous `unmet_figures`, counting in Python."""
    starts = [f.period_start for f in figures]
    last = figures[-1].period_end
    params = {"t": p["t"], "tz": tz, "lo": p["lo"], "hi": p["hi"]}
    c: list[dict[str, Counter[str]]] = [
        {k: Counter() for k in ("declared", "reasons", "hours", "communes", "calls")}
        for _ in figures
    ]
    for row in await session.execute(text(OLD_UNMET_SQL), params):
        i = period_of(starts, last, row.day)
        if i is None:
            continue
        if row.type == "unmet.empty_search":
            c[i]["declared"]["empty"] += row.n
            continue
        c[i]["declared"]["unmet"] += row.n
        c[i]["reasons"][row.reason] += row.n
        c[i]["hours"][f"{row.hour:02d}"] += row.n
        c[i]["communes"][row.commune or "inconnue"] += row.n
    for row in await session.execute(text(OLD_CALLS_SQL), params):
        i = period_of(starts, last, row.day)
        if i is not None:
            c[i]["calls"]["sent"] += 1
            c[i]["calls"]["produced"] += int(row.produced)
    for f, k in zip(figures, c, strict=True):
        placed = int(f.snp["slots_booked_by_sas"]) + int(f.snp["overbooked"])
        f.unmet = {
            "unmet": k["declared"]["unmet"],
            "sas_requests": placed + k["declared"]["unmet"],
            "empty_searches": k["declared"]["empty"],
            "unmet_by_reason": {r: k["reasons"][r] for r in REASONS},
            "unmet_by_hour": {h: k["hours"][h] for h in HOURS},
            "unmet_by_commune": dict(sorted(k["communes"].items())),
            "calls_sent": k["calls"]["sent"],
            "slots_from_calls": k["calls"]["produced"],
        }


GPS = [uuid.UUID(int=n) for n in range(1, 4)]
COMMUNES = ("15014", "15100", None, "")
FIRST, LAST = date(2027, 3, 20), date(2027, 11, 10)
# Instants worth hitting: local midnights at the range's and the periods' edges, and the
# nights the clocks change (28 March and 31 October 2027).
EDGES = [
    datetime(2027, 3, 20, tzinfo=PARIS),
    datetime(2027, 4, 1, tzinfo=PARIS),
    datetime(2027, 3, 28, 1, 59, tzinfo=PARIS),
    datetime(2027, 3, 28, 3, 0, tzinfo=PARIS),
    datetime(2027, 10, 31, 2, 30, tzinfo=PARIS),
    datetime(2027, 10, 31, 2, 30, fold=1, tzinfo=PARIS),
    datetime(2027, 7, 1, tzinfo=PARIS),
    datetime(2027, 11, 10, tzinfo=PARIS),
]
SPAN_MINUTES = int((LAST - FIRST).days + 4) * 24 * 60
EVENT = st.tuples(
    st.sampled_from(("unmet", "unmet", "empty", "call", "publish")),
    st.one_of(st.integers(0, SPAN_MINUTES), st.sampled_from(EDGES)),
    st.integers(0, 63),
)


def event(territory: uuid.UUID, kind: str, when: Any, i: int) -> dict[str, Any]:
    at = (
        when.astimezone(UTC)
        if isinstance(when, datetime)
        else datetime(2027, 3, 18, tzinfo=UTC) + timedelta(minutes=when)
    )
    gp = GPS[i % len(GPS)]
    base = {"at": at, "territory_id": territory, "subject_id": uuid.uuid4()}
    if kind == "unmet":
        commune = COMMUNES[i % len(COMMUNES)]
        data = {"reason": REASONS[i % len(REASONS)], "modality": None}
        data |= {} if commune is None else {"commune_insee": commune}
        return {**base, "type": "unmet.recorded", "practitioner_id": None, "data": data}
    if kind == "empty":
        data = {"commune_insee": COMMUNES[i % 2]}
        return {**base, "type": "unmet.empty_search", "practitioner_id": None, "data": data}
    if kind == "call":
        data = {"free_slots": 0, "floor": 3, "window_hours": 48}
        return {**base, "type": "slots.call_sent", "practitioner_id": gp, "data": data}
    day = (at + timedelta(days=1)).date().isoformat()
    data = {"modality": "cabinet", "visibility": ("sas", "public", "cpts")[i % 3],
            "days": {day: {"slots": 1 + i % 3, "minutes": 20}}}  # fmt: skip
    return {**base, "type": "slots.offered", "practitioner_id": gp, "data": data}


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=st.lists(EVENT, min_size=1, max_size=60))
async def test_sql_figures_equal_the_previous_python_recount(session, territory, events):
    t = uuid.UUID(territory.id)
    nested = await session.begin_nested()
    try:
        await session.execute(
            insert(ActivityEvent).values([event(t, k, w, i) for k, w, i in events])
        )
        for granularity in ("week", "month", "quarter", "year"):
            signed_on = date(2026, 6, 15) if granularity == "year" else None
            buckets, p = indicators.query_params(
                t, "Europe/Paris", granularity, FIRST, LAST, signed_on
            )
            figures = [Figures(b, e, snp={"slots_booked_by_sas": 2, "overbooked": 1,
                                          "booked_within_48h": 1}) for b, e in buckets]  # fmt: skip
            expected = copy.deepcopy(figures)
            await unmet_figures(session, p, figures, "Europe/Paris")
            await python_recount(session, p, expected, "Europe/Paris")
            for got, want in zip(figures, expected, strict=True):
                assert {k: got.unmet[k] for k in want.unmet} == want.unmet, granularity
    finally:
        await nested.rollback()
