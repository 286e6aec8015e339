"""Indicators for a year of activity of a 2,000-practitioner territory (about a million
events): time of GET /v1/indicators through the API, the unmet section on its own against a
raw-SQL baseline (bench/indicators_unmet.py), and the query plans.

    .venv/bin/python -m bench.indicators [--gps 2000] [--requests 10] [--reuse]

`--reuse` keeps the database of the previous run (same seed) and only measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
import httpx

from app.security import digest
from bench.common import Server, bench_database_url, fresh_database
from bench.indicators_unmet import seed_unmet, unmet_section

RNG = random.Random(7)


async def dashboard_key(conn: asyncpg.Connection, territory: uuid.UUID) -> str:
    """A new dashboard key of the territory."""
    key = f"crn_bench_{uuid.uuid4().hex}"
    await conn.execute(
        "INSERT INTO api_key (id, name, role, prefix, digest, territory_id) "
        "VALUES ($1, 'bench', 'dashboard', 'crn_bench', $2, $3)",
        uuid.uuid4(),
        digest(key),
        territory,
    )
    return key


async def seed(dsn: str, gps: int, year: int) -> tuple[uuid.UUID, str]:
    conn = await asyncpg.connect(dsn)
    territory = uuid.uuid4()
    await conn.execute(
        "INSERT INTO territory (id, name, timezone, department) "
        "VALUES ($1, 'CPTS bench', 'Europe/Paris', '15')",
        territory,
    )
    key = await dashboard_key(conn, territory)
    practitioners = [uuid.uuid4() for _ in range(gps)]
    start = datetime(year, 1, 1, tzinfo=UTC)
    rows = []
    # Each GP declares 3 MT places a little before the year.
    for gp in practitioners:
        rows.append((start - timedelta(days=1), "mt.capacity_set", territory, gp, None,
                     json.dumps({"capacity": 3})))  # fmt: skip
    waiting: list[uuid.UUID] = []
    for day_index in range(365):
        day = start + timedelta(days=day_index)
        if day.weekday() == 6:
            continue

        def at() -> datetime:
            return day + timedelta(minutes=RNG.randint(0, 1439))  # noqa: B023

        # Each GP's slots of that day, announced by the materialisation two weeks before
        # (one GP in ten keeps them for the CPTS).
        for n, gp in enumerate(practitioners):
            rows.append(
                (
                    day - timedelta(days=14),
                    "slots.offered",
                    territory,
                    gp,
                    None,
                    json.dumps(
                        {
                            "modality": "cabinet",
                            "visibility": "cpts" if n % 10 == 0 else "sas",
                            "days": {day.date().isoformat(): {"slots": 6, "minutes": 120}},
                        }
                    ),
                )
            )
        booked = []
        for _ in range(600):  # SAS bookings of the day
            lead = RNG.randint(30, 4000)
            booking = uuid.uuid4()
            booked.append(booking)
            data = {
                "modality": RNG.choice(["cabinet", "visite", "teleconsultation"]),
                "lead_minutes": lead,
                "start": (day + timedelta(minutes=lead)).isoformat(),
            }
            rows.append((day, "booking.booked", territory, RNG.choice(practitioners), booking,
                         json.dumps(data)))  # fmt: skip
        # Of them, 30 cancelled, 500 honored and 25 no-shows (each booking one fate).
        RNG.shuffle(booked)
        for type_, chosen in (
            ("booking.cancelled", booked[:30]),
            ("booking.honored", booked[30:530]),
            ("booking.no_show", booked[530:555]),
        ):
            for booking in chosen:
                rows.append((day + timedelta(days=2), type_, territory, None, booking,
                             json.dumps({"was": "booked"})))  # fmt: skip
        seed_unmet(rows, RNG, territory, practitioners, day)
        for _ in range(40):
            request = uuid.uuid4()
            waiting.append(request)
            rows.append((at(), "mt.registered", territory, None, request,
                         json.dumps({"priority": RNG.randint(0, 3)})))  # fmt: skip
        for _ in range(30):
            request = waiting.pop(RNG.randrange(len(waiting)))
            rows.append((day + timedelta(hours=23, minutes=59), "mt.attached", territory,
                         RNG.choice(practitioners), request,
                         json.dumps({"waiting_days": RNG.uniform(1, 200)})))  # fmt: skip
    await conn.copy_records_to_table(
        "activity_event", records=rows,
        columns=["at", "type", "territory_id", "practitioner_id", "subject_id", "data"],
    )  # fmt: skip
    await conn.execute("ANALYZE activity_event")
    await conn.execute("ANALYZE offer_period, booking_state")
    print(f"{len(rows):,} events for {gps} practitioners over {year}")
    await conn.close()
    return territory, key


async def reused(dsn: str) -> tuple[uuid.UUID, str] | None:
    """The territory of a previous run, with a new key; None when there is none."""
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        return None
    try:
        territory = await conn.fetchval("SELECT id FROM territory WHERE name = 'CPTS bench'")
        if territory is None:
            return None
        return territory, await dashboard_key(conn, territory)
    finally:
        await conn.close()


async def main(gps: int, requests: int, reuse: bool = False) -> None:
    url = bench_database_url("creneau_bench_indicators")
    dsn = url.replace("+asyncpg", "")
    year = date.today().year - 1
    found = await reused(dsn) if reuse else None
    if found is None:
        await fresh_database(url)
        t0 = time.perf_counter()
        found = await seed(dsn, gps, year)
        print(f"seeded in {time.perf_counter() - t0:.1f} s")
    territory, key = found
    server = Server(url)
    try:
        server.wait_ready()
        async with httpx.AsyncClient(
            base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {key}"}
        ) as client:
            for granularity in ("month", "week", "quarter"):
                times = []
                for _ in range(requests):
                    started = time.perf_counter()
                    r = await client.get(
                        "/v1/indicators",
                        params={
                            "from": f"{year}-01-01",
                            "to": f"{year + 1}-01-01",
                            "granularity": granularity,
                        },
                    )
                    times.append((time.perf_counter() - started) * 1000)
                    assert r.status_code == 200, r.text
                print(
                    f"GET /v1/indicators a year by {granularity:<7}: median "
                    f"{statistics.median(times):7.0f} ms, max {max(times):7.0f} ms "
                    "(target < 1,000 ms)"
                )
        await unmet_section(url, territory, year, requests)
        await explain(url, territory, year)
    finally:
        server.stop()


async def explain(url: str, territory: uuid.UUID, year: int) -> None:
    """The plan of each indicator query for a year by month, as docs/indicators.md shows."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.activity.indicators import QUERIES, query_params, statement

    engine = create_async_engine(url)
    _, params = query_params(territory, "Europe/Paris", "month", date(year, 1, 1),
                             date(year + 1, 1, 1))  # fmt: skip
    async with engine.connect() as conn:
        for name, sql in QUERIES.items():
            explained = statement(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}")
            rows = await conn.execute(explained, params)
            print(f"\n-- {name}")
            for (line,) in rows:
                print(line)
    await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gps", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="measure the previous run's data")
    args = parser.parse_args()
    asyncio.run(main(args.gps, args.requests, args.reuse))
