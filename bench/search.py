"""The 48-hour slot search under load, against the same SQL run raw with asyncpg.

Seeds 2,000 practitioners over 20 territories with 14 days of slots and times the
materialisation, with its raw-SQL floor: a bare INSERT ... SELECT of the same slots, with and
without the no-overlap exclusion constraint. Then measures GET /v1/slots?near=…&radius_km=…
through the HTTP API (`creneau serve --workers N` subprocess, for each N of --workers) at 1, 4,
10 and 50 closed-loop clients, and the identical SQL statement through an asyncpg pool at the
same concurrency, in the same run (the key is looked up once beforehand, as each server process
caches its caller). Prints the figures and the API/raw throughput ratio.

    .venv/bin/python -m bench.search [--seconds 10] [--clients 1,4,10,50] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

import asyncpg

from app.db import make_engine, make_sessionmaker
from app.directory.callers import KEY_STATEMENT
from app.scheduling.materialisation import materialize_all
from app.scheduling.queries import SlotSearch, search_sql
from app.security import digest
from bench.common import (
    LoadClient,
    Server,
    bench_database_url,
    closed_loop,
    copy_directory,
    fresh_database,
)

TERRITORIES = 20
PRACTICES_PER_TERRITORY = 25
PRACTITIONERS_PER_PRACTICE = 4
RNG = random.Random(42)
# Territory centres spread over metropolitan France.
CENTRES = [(43.3 + (i % 5) * 1.6, -0.5 + (i // 5) * 1.7) for i in range(TERRITORIES)]


async def seed(url: str) -> tuple[list[uuid.UUID], list[tuple[float, float]], str]:
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    territories, practices, practitioners, rules, centres = [], [], [], [], []
    today = date.today()
    for t in range(TERRITORIES):
        tid = uuid.uuid4()
        territories.append((tid, f"CPTS bench {t}", "Europe/Paris", f"{(t % 90) + 1:02d}"))
        lat0, lon0 = CENTRES[t]
        centres.append((lat0, lon0))
        for p in range(PRACTICES_PER_TERRITORY):
            pid = uuid.uuid4()
            practices.append(
                (
                    pid,
                    tid,
                    f"MSP {t}-{p}",
                    "1 place de la Mairie",
                    "15014",
                    lat0 + RNG.uniform(-0.2, 0.2),
                    lon0 + RNG.uniform(-0.25, 0.25),
                )
            )
            for _g in range(PRACTITIONERS_PER_PRACTICE):
                gid = uuid.uuid4()
                rpps = f"{10_000_000_000 + len(practitioners):011d}"
                practitioners.append((gid, pid, tid, rpps, f"Nom{len(practitioners)}", "Prénom"))
                # About 11 SNP slots a working day: a generous SNP supply per GP.
                rules.append(
                    (
                        uuid.uuid4(),
                        gid,
                        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
                        dtime(8),
                        dtime(10),
                        20,
                        "cabinet",
                        "sas",
                        today,
                    )
                )
                rules.append(
                    (
                        uuid.uuid4(),
                        gid,
                        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA",
                        dtime(17),
                        dtime(19),
                        20,
                        RNG.choice(["cabinet", "visite", "teleconsultation"]),
                        "sas",
                        today,
                    )
                )
    await copy_directory(conn, territories, practices, practitioners, rules)
    regulator = uuid.uuid4()
    await conn.execute(
        "INSERT INTO regulator (id, name, department) VALUES ($1, 'SAS bench', '15')", regulator
    )
    # The SAS serves the first four territories, as a department's SAS serves its CPTS.
    await conn.executemany(
        "INSERT INTO regulator_territory (regulator_id, territory_id) VALUES ($1, $2)",
        [(regulator, t[0]) for t in territories[:4]],
    )
    key = f"crn_bench_{uuid.uuid4().hex}"
    await conn.execute(
        "INSERT INTO api_key (id, name, role, prefix, digest, regulator_id) "
        "VALUES ($1, 'bench', 'regulator', 'crn_bench', $2, $3)",
        uuid.uuid4(),
        digest(key),
        regulator,
    )
    await conn.close()
    return [t[0] for t in territories[:4]], centres[:4], key


async def materialize(url: str) -> tuple[float, dict[str, int]]:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as session:
        t0 = time.perf_counter()
        result = await materialize_all(session, connections=2)  # as the job does
        await session.commit()
        elapsed = time.perf_counter() - t0
    await engine.dispose()
    return elapsed, result


_RAW_INSERT = """
    INSERT INTO slot (id, practitioner_id, territory_id, rule_id, source, start, "end",
                      modality, visibility, status)
    SELECT gen_random_uuid(), practitioner_id, territory_id, rule_id, 'rule', start, "end",
           modality, visibility, status
    FROM bench_materialised WHERE territory_id = ANY($1::uuid[])
    ORDER BY practitioner_id, start
"""


async def raw_materialise(url: str, *, exclusion: bool = True) -> float:
    """The materialisation's raw-SQL floor: the very slots the API made, already cut, inserted
    again by a bare INSERT ... SELECT into the same table, on two connections (as the job), each
    a half of the territories. With `exclusion=False`, without the no-overlap exclusion
    constraint (put back afterwards), to show its share. Leaves the same slots in place."""
    dsn = url.replace("+asyncpg", "")
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        """
        CREATE TABLE IF NOT EXISTS bench_materialised AS
            SELECT practitioner_id, territory_id, rule_id, modality, visibility, start, "end",
                   status
            FROM slot WHERE source = 'rule';
        TRUNCATE slot, booking CASCADE;
        """
    )
    if not exclusion:
        await conn.execute("ALTER TABLE slot DROP CONSTRAINT slot_no_overlap")
    territories = [r["id"] for r in await conn.fetch("SELECT id FROM territory ORDER BY id")]
    await conn.execute("CHECKPOINT")
    halves = [territories[::2], territories[1::2]]
    others = [await asyncpg.connect(dsn) for _ in halves]
    t0 = time.perf_counter()
    await asyncio.gather(*(c.execute(_RAW_INSERT, h) for c, h in zip(others, halves, strict=True)))
    elapsed = time.perf_counter() - t0
    for c in others:
        await c.close()
    if not exclusion:
        await conn.execute(
            "ALTER TABLE slot ADD CONSTRAINT slot_no_overlap EXCLUDE USING gist "
            """(practitioner_id WITH =, tstzrange(start, "end", '[)') WITH &&)"""
        )
    await conn.close()
    return elapsed


def raw_sql(territory_ids: list[uuid.UUID], near: tuple[float, float]) -> tuple[str, list[object]]:
    now = datetime.now(UTC)
    q = SlotSearch(
        start=now,
        end=now + timedelta(hours=48),
        now=now,
        territory_ids=frozenset(territory_ids),
        visibilities=("sas", "public"),
        near=near,
        radius_km=30,
        limit=50,
    )
    return search_sql(q)  # the very statement and arguments the API runs


async def main(seconds: float, client_counts: list[int], workers: list[int]) -> None:
    url = bench_database_url("creneau_bench_search")
    print(f"database: {url.split('@')[-1]}")
    await fresh_database(url)
    t0 = time.perf_counter()
    territory_ids, centres, key = await seed(url)
    print(
        f"seeded {TERRITORIES * PRACTICES_PER_TERRITORY * PRACTITIONERS_PER_PRACTICE} "
        f"practitioners, 2 rules each, in {time.perf_counter() - t0:.1f} s"
    )
    elapsed, result = await materialize(url)
    print(
        f"materialise 14 days: {result['slots_created']} slots from {result['rules']} rules "
        f"in {elapsed:.2f} s (target < 3 s)"
    )
    raw = await raw_materialise(url)
    bare = await raw_materialise(url, exclusion=False)
    print(
        f"raw SQL floor, the same {result['slots_created']} slots by a bare INSERT ... SELECT "
        f"on 2 connections: {raw:.2f} s (API/raw time = {elapsed / raw:.2f}); "
        f"without the no-overlap exclusion constraint: {bare:.2f} s"
    )
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    await conn.execute("ANALYZE")
    await conn.close()

    points = [
        (lat + RNG.uniform(-0.1, 0.1), lon + RNG.uniform(-0.1, 0.1))
        for lat, lon in centres
        for _ in range(5)
    ]
    pool = await asyncpg.create_pool(
        url.replace("+asyncpg", ""), min_size=1, max_size=max(client_counts)
    )
    statements = [raw_sql(territory_ids, p) for p in points]
    # The API's SQL: its key is looked up once (then its caller is cached, as in each server
    # process), then each call is the search.
    await pool.fetchrow(KEY_STATEMENT.sql, *KEY_STATEMENT.args({"digest": digest(key)}))

    async def raw_call(i: int) -> bool:
        sql, params = statements[i % len(statements)]
        async with pool.acquire() as c:
            await c.fetch(sql, *params)
        return True

    print(f"\n{seconds:.0f} s per run, closed loop; load generator shares the 2 cores")
    raws = {n: await closed_loop(n, seconds, raw_call) for n in client_counts}
    await pool.close()
    for count in workers:
        # The server keeps as many connections as the raw side's pool, split between its
        # workers (connections past a pool's size are opened and closed request by request).
        per_worker = -(-max(client_counts) // count)
        server = Server(
            url, workers=count, env={"DB_POOL_SIZE": str(per_worker), "DB_MAX_OVERFLOW": "0"}
        )
        try:
            server.wait_ready()
            headers = {"Authorization": f"Bearer {key}"}
            async with LoadClient(server.url, headers=headers) as client:
                params = {"near": "{:f},{:f}".format(*points[0]), "radius_km": 30}
                n_items = len((await client.get("/v1/slots", params=params)).json()["items"])
                print(
                    f"\n{count} uvicorn worker(s); a search returns {n_items} slots (limit 50); "
                    f"server RSS {server.rss_mb():.0f} MB"
                )

                async def api_call(i: int) -> bool:
                    lat, lon = points[i % len(points)]
                    r = await client.get(
                        "/v1/slots", params={"near": f"{lat},{lon}", "radius_km": 30}
                    )
                    return r.status_code == 200

                for n in client_counts:
                    api = await closed_loop(n, seconds, api_call)
                    print(api.line("API"))
                    print(raws[n].line("raw SQL"))
                    print(
                        f"{'':<10} API/raw throughput = {api.throughput / raws[n].throughput:.0%}"
                        "  (target >= 40 %; p95 target < 25 ms up to 10 clients)"
                    )
                print(f"server RSS after load: {server.rss_mb():.0f} MB")
        finally:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", default="1,4,10,50")
    parser.add_argument("--workers", default="1,2", help="uvicorn worker processes, e.g. 1,2")
    args = parser.parse_args()
    asyncio.run(
        main(
            args.seconds,
            [int(c) for c in args.clients.split(",")],
            [int(w) for w in args.workers.split(",")],
        )
    )
