"""The unmet-demand part of bench/indicators.py: a day's unmet requests, empty searches, calls
for slots and one-off publications for the seed, and the unmet section timed on its own.

The section (app.activity.unmet_figures) is timed directly on a session, a year by month,
beside a raw-SQL baseline measured in the same run: the database finding and reading the
events the section counts (unmet requests, empty searches, calls: a count of them and of
their communes), with no grouping, no correlated count and nothing sent back. The ratio
section / baseline says what the counting costs beyond reading, and holds better than
milliseconds on a shared machine. The year's totals are printed so that two versions of
the section can be compared figure for figure."""

from __future__ import annotations

import hashlib
import json
import random
import statistics
import time
import uuid
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

REASONS = ("no_slot", "no_suitable_slot", "too_far", "too_late", "modality_unavailable",
           "patient_refused", "other")  # fmt: skip
COMMUNES = tuple(f"15{n:03d}" for n in range(1, 60, 2))
UNMET_A_DAY, EMPTY_A_DAY, CALLS_A_DAY, ONE_OFF_A_DAY = 30, 10, 20, 60

BASELINE_SQL = """
SELECT count(*) AS events, count(e.data->>'commune_insee') AS with_commune FROM activity_event e
WHERE e.territory_id = :t AND e.type IN ('unmet.recorded', 'unmet.empty_search', 'slots.call_sent')
  AND e.at >= :lo AND e.at < :hi
"""


def seed_unmet(
    rows: list[tuple[Any, ...]],
    rng: random.Random,
    territory: uuid.UUID,
    practitioners: list[uuid.UUID],
    day: datetime,
) -> None:
    """A day's unmet demand: declared unmet requests and empty searches at any hour, calls
    for slots (half of the called GPs publish one-off slots within the next 30 hours, most
    of them within 24 h) and other GPs' one-off publications."""

    def at() -> datetime:
        return day + timedelta(minutes=rng.randint(0, 1439))

    def event(when: datetime, type_: str, gp: uuid.UUID | None, **data: Any) -> None:
        rows.append((when, type_, territory, gp, uuid.uuid4(), json.dumps(data)))

    for _ in range(UNMET_A_DAY):
        event(at(), "unmet.recorded", None, reason=rng.choice(REASONS), modality="cabinet",
              wanted_within_hours=48, commune_insee=rng.choice(COMMUNES))  # fmt: skip
    for _ in range(EMPTY_A_DAY):
        event(at(), "unmet.empty_search", None, modality=None,
              commune_insee=rng.choice(COMMUNES))  # fmt: skip
    for _ in range(CALLS_A_DAY):
        gp, sent = rng.choice(practitioners), at()
        event(sent, "slots.call_sent", gp, free_slots=rng.randint(0, 9), floor=10,
              window_hours=48)  # fmt: skip
        if rng.random() < 0.5:
            published = sent + timedelta(minutes=rng.randint(1, 1800))
            offered(event, published, gp, rng)
    for _ in range(ONE_OFF_A_DAY - CALLS_A_DAY // 2):
        offered(event, at(), rng.choice(practitioners), rng)


def offered(event: Any, when: datetime, gp: uuid.UUID, rng: random.Random) -> None:
    """A one-off publication (it has a subject: the slot), as app.scheduling writes it."""
    day = (when + timedelta(days=1)).date().isoformat()
    event(when, "slots.offered", gp, modality="cabinet",
          visibility=rng.choice(("sas", "sas", "public", "cpts")),
          days={day: {"slots": rng.randint(1, 3), "minutes": 20}})  # fmt: skip


async def unmet_section(url: str, territory: uuid.UUID, year: int, runs: int) -> None:
    """Time the unmet section of a year by month, and the raw-SQL baseline, `runs` times
    each (alternating, so that both see the same load); print the medians, their ratio and
    the year's totals."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from app.activity import indicators
    from app.activity.unmet_figures import unmet_figures

    engine = create_async_engine(url)
    first, last = date(year, 1, 1), date(year + 1, 1, 1)
    async with AsyncSession(engine) as session:
        now = datetime(year + 1, 1, 1, tzinfo=ZoneInfo("Europe/Paris"))
        _, p = indicators.query_params(territory, "Europe/Paris", "month", first, last)
        whole, section, baseline = [], [], []
        for _ in range(max(runs, 3)):
            started = time.perf_counter()
            figures = await indicators.compute(
                session, territory, "Europe/Paris", "month", first, last, now=now
            )
            whole.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await unmet_figures(session, p, figures, "Europe/Paris")
            section.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            read = (await session.execute(text(BASELINE_SQL), p)).one().events
            baseline.append((time.perf_counter() - started) * 1000)
    await engine.dispose()
    totals: Counter[str] = Counter()
    for f in figures:
        totals.update({k: v for k, v in f.unmet.items() if isinstance(v, int)})
    digest = hashlib.sha256(
        json.dumps([f.unmet for f in figures], sort_keys=True).encode()
    ).hexdigest()[:12]
    s, b, w = (statistics.median(x) for x in (section, baseline, whole))
    print(
        f"\nunmet section, a year by month: median {s:6.0f} ms; raw-SQL baseline (reading its "
        f"{read:,} events) {b:6.0f} ms; ratio {s / b:4.1f}; whole compute {w:6.0f} ms"
    )
    names = ("sas_requests", "placed", "unmet", "empty_searches", "calls_sent",
             "slots_from_calls")  # fmt: skip
    print("  year totals: " + ", ".join(f"{k} {totals[k]:,}" for k in names)
          + f"; every figure's digest {digest}")  # fmt: skip
