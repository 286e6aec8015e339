"""Indicators for a year of activity of a 2,000-practitioner territory (about a million
events): time of GET /v1/indicators through the API, and the query plans.

    .venv/bin/python -m bench.indicators [--gps 2000] [--requests 10]
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

RNG = random.Random(7)


async def seed(dsn: str, gps: int, year: int) -> tuple[uuid.UUID, str]:
    conn = await asyncpg.connect(dsn)
    territory = uuid.uuid4()
    await conn.execute(
        "INSERT INTO territory (id, name, timezone, department) "
        "VALUES ($1, 'CPTS bench', 'Europe/Paris', '15')",
        territory,
    )
    key = f"crn_bench_{uuid.uuid4().hex}"
    await conn.execute(
        "INSERT INTO api_key (id, name, role, prefix, digest, territory_id) "
        "VALUES ($1, 'bench', 'dashboard', 'crn_bench', $2, $3)",
        uuid.uuid4(),
        digest(key),
        territory,
    )
    practitioners = [uuid.uuid4() for _ in range(gps)]
    start = datetime(year, 1, 1, tzinfo=UTC)
    rows = []
    for day_index in range(365):
        day = start + timedelta(days=day_index)
        if day.weekday() == 6:
            continue
        # Each GP's slots of that day, announced by the materialisation two weeks before.
        for gp in practitioners:
            rows.append(
                (
                    day - timedelta(days=14),
                    "slots.offered",
                    territory,
                    gp,
                    json.dumps(
                        {
                            "modality": "cabinet",
                            "visibility": "sas",
                            "days": {day.date().isoformat(): {"slots": 6, "minutes": 120}},
                        }
                    ),
                )
            )
        for _ in range(600):  # SAS bookings of the day
            lead = RNG.randint(30, 4000)
            rows.append(
                (
                    day + timedelta(minutes=RNG.randint(0, 1439)),
                    "booking.booked",
                    territory,
                    RNG.choice(practitioners),
                    json.dumps(
                        {
                            "modality": RNG.choice(["cabinet", "visite", "teleconsultation"]),
                            "lead_minutes": lead,
                            "start": (day + timedelta(minutes=lead)).isoformat(),
                        }
                    ),
                )
            )
        for type_, n in (
            ("booking.cancelled", 30),
            ("booking.honored", 500),
            ("booking.no_show", 25),
            ("mt.registered", 40),
        ):
            for _ in range(n):
                rows.append(
                    (
                        day + timedelta(minutes=RNG.randint(0, 1439)),
                        type_,
                        territory,
                        None,
                        json.dumps({"was": "booked", "priority": RNG.randint(0, 3)}),
                    )
                )
        for _ in range(30):
            rows.append(
                (
                    day + timedelta(minutes=RNG.randint(0, 1439)),
                    "mt.attached",
                    territory,
                    RNG.choice(practitioners),
                    json.dumps(
                        {"priority": RNG.randint(0, 3), "waiting_days": RNG.uniform(1, 200)}
                    ),
                )
            )
    await conn.copy_records_to_table(
        "activity_event", records=rows,
        columns=["at", "type", "territory_id", "practitioner_id", "data"],
    )  # fmt: skip
    await conn.execute("ANALYZE activity_event")
    await conn.execute("ANALYZE offer_period, booking_day, booked_slot_day")
    print(f"{len(rows):,} events for {gps} practitioners over {year}")
    await conn.close()
    return territory, key


async def main(gps: int, requests: int) -> None:
    url = bench_database_url("creneau_bench_indicators")
    dsn = url.replace("+asyncpg", "")
    await fresh_database(url)
    year = date.today().year - 1
    t0 = time.perf_counter()
    territory, key = await seed(dsn, gps, year)
    print(f"seeded in {time.perf_counter() - t0:.1f} s")
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
        await explain(url, territory, year)
    finally:
        server.stop()


async def explain(url: str, territory: uuid.UUID, year: int) -> None:
    """The plan of each indicator query for a year by month, as docs/indicators.md shows."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.activity.indicators import QUERIES, query_params

    engine = create_async_engine(url)
    _, params = query_params(territory, "Europe/Paris", "month", date(year, 1, 1),
                             date(year + 1, 1, 1))  # fmt: skip
    async with engine.connect() as conn:
        for name, sql in QUERIES.items():
            rows = await conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}"), params)
            print(f"\n-- {name}")
            for (line,) in rows:
                print(line)
    await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gps", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.gps, args.requests))
