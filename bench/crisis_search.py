"""The slot search's plan with crisis capacity first: EXPLAIN ANALYZE of the very statement
the API runs, on the territories of bench/search.py (2,000 GPs, 14 days of slots), with a
running crisis whose slots are one in twenty of a territory's (`--crisis`), or none.

    .venv/bin/python -m bench.crisis_search [--crisis] [--runs 20] [--reuse]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from app.scheduling.queries import SlotSearch, search_sql
from bench.common import bench_database_url, fresh_database
from bench.search import materialize, seed


def statements(territory_ids: list[uuid.UUID], centre: tuple[float, float]) -> dict[str, object]:
    now = datetime.now(UTC)
    base = {
        "start": now,
        "end": now + timedelta(hours=48),
        "now": now,
        "territory_ids": frozenset(territory_ids),
        "visibilities": ("sas", "public"),
        "limit": 50,
    }
    return {
        "4 territories, 48 h": search_sql(SlotSearch(**base)),  # type: ignore[arg-type]
        "near, 30 km": search_sql(SlotSearch(**base, near=centre, radius_km=30)),  # type: ignore[arg-type]
        "1 territory, 7 days": search_sql(
            SlotSearch(  # type: ignore[arg-type]
                **{
                    **base,
                    "end": now + timedelta(days=7),
                    "territory_ids": frozenset(territory_ids[:1]),
                }
            )
        ),
    }


async def main(crisis: bool, runs: int, reuse: bool) -> None:
    url = bench_database_url("creneau_bench_crisis_search")
    if not reuse:
        await fresh_database(url)
        await seed(url)
        await materialize(url)
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    await conn.execute("DELETE FROM crisis")  # cascades to nothing; slots' crisis_id nulled
    # The four territories the bench's SAS serves, and the first one's centre.
    territory_ids = [
        r["territory_id"]
        for r in await conn.fetch(
            "SELECT territory_id FROM regulator_territory ORDER BY territory_id"
        )
    ]
    centres = [
        (r["lat"], r["lon"])
        for r in await conn.fetch(
            "SELECT avg(lat) AS lat, avg(lon) AS lon FROM practice WHERE territory_id = $1",
            territory_ids[0],
        )
    ]
    if crisis:
        crisis_id = uuid.uuid4()
        now = datetime.now(UTC)
        has_crisis = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'crisis'"
        )
        assert has_crisis
        await conn.execute(
            "INSERT INTO crisis (id, territory_id, kind, title, started_at, expected_end_at, "
            "declared_at) VALUES ($1, $2, 'epidemic', 'bench', $3, $4, $3)",
            crisis_id,
            territory_ids[0],
            now,
            now + timedelta(days=7),
        )
        tagged = await conn.execute(
            "UPDATE slot SET crisis_id = $1 WHERE territory_id = $2 "
            "AND abs(hashtext(id::text)) % 20 = 0",
            crisis_id,
            territory_ids[0],
        )
        print(f"running crisis in territory 0: {tagged}")
    await conn.execute("ANALYZE")
    print(f"slots: {await conn.fetchval('SELECT count(*) FROM slot')}")
    for name, (sql, args) in statements(territory_ids, centres[0]).items():
        times, plan = [], None
        for _ in range(runs):
            rows = await conn.fetch(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
            plan = json.loads(rows[0][0])[0]
            times.append(plan["Execution Time"])
        assert plan is not None
        print(
            f"{name}: median {statistics.median(times):.2f} ms, "
            f"min {min(times):.2f} ms over {runs} runs"
        )
    sql, args = statements(territory_ids, centres[0])["4 territories, 48 h"]
    for row in await conn.fetch(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}", *args):
        print("   ", row[0])
    await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crisis", action="store_true")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--reuse", action="store_true", help="keep the seeded database")
    args = parser.parse_args()
    asyncio.run(main(args.crisis, args.runs, args.reuse))
