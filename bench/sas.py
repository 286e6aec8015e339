"""The SAS guide's Slot search at scale: 25 practitioners over 48 h with the four `_include`s on
a 2,000-practitioner instance (the searched ones with full days: about 1,500 slots an answer),
at 1 and 4 clients with 1 and 2 uvicorn workers, against the same SQL statements run raw with
asyncpg in the same run: p50, p95 and bytes per answer.

    .venv/bin/python -m bench.sas [--seconds 8] [--workers 1,2]

With `--workers 2` the server runs as the operations guide deploys it on this 2-core machine
(one worker per core).
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import asyncpg

from app.db import DriverStatement
from app.directory.callers import KEY_STATEMENT
from app.sas_bridge import fhir_contexts, fhir_search, fhir_slot_query
from app.security import Caller, digest
from bench.common import LoadClient, Server, closed_loop
from bench.fhir import RPPS_OID, platform_instance


def guide_query(rpps: list[str]) -> tuple[str, fhir_slot_query.SlotQuery]:
    start = datetime.now(UTC)
    end = start + timedelta(hours=48)
    ids = ",".join(f"{RPPS_OID}|8{r}" for r in rpps)
    url = (
        "/fhir/Slot?_include=Slot:schedule&_include:iterate=Schedule:actor"
        "&_include=Slot:service-type-reference&_include:iterate=HealthcareService:organization"
        f"&start=ge{quote(start.isoformat(timespec='milliseconds'))}"
        f"&start=le{quote(end.isoformat(timespec='milliseconds'))}"
        f"&schedule.actor:Practitioner.identifier={quote(ids, safe='|,:')}&status=free"
    )
    q = fhir_slot_query.SlotQuery(
        start_bounds=[("ge", start), ("le", end)], statuses=["free"], rpps=list(rpps)
    )
    return url, q


async def guide_directory(dsn: str) -> None:
    """The directory fields the guide's answer carries, which the shared seed leaves empty:
    each CPTS's FINESS and phone; each practice's postal code, city, phone and FINESS (every
    other one a SIRET instead)."""
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        """
        UPDATE territory SET finess = (150000000 + t.n)::text,
            phone = '04 71 45 ' || lpad(t.n::text, 2, '0') || ' 00'
        FROM (SELECT id, row_number() OVER (ORDER BY name) AS n FROM territory) t
        WHERE territory.id = t.id;
        UPDATE practice SET postal_code = '15000', city = 'Aurillac',
            phone = '04 71 ' || lpad((p.n % 100)::text, 2, '0') || ' '
                || lpad((p.n / 100)::text, 2, '0') || ' 10',
            finess = CASE WHEN p.n % 2 = 0 THEN (150780000 + p.n)::text END,
            siret = CASE WHEN p.n % 2 = 1 THEN (12345678900000 + p.n)::text END
        FROM (SELECT id, row_number() OVER (ORDER BY name) AS n FROM practice) p
        WHERE practice.id = p.id;
        ANALYZE territory, practice;
        """
    )
    await conn.close()


async def dense_agendas(dsn: str, groups: list[list[str]]) -> None:
    """The issue's scale: the searched practitioners keep a full day of 20-minute SNP slots,
    08:00 to 18:00 (Paris) for the next three days, about 1,500 free slots in 48 h per search of
    25; slots already published at those times stay as they are (the exclusion constraint)."""
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        """
        INSERT INTO slot (id, practitioner_id, territory_id, start, "end", source, modality,
                          visibility, status)
        SELECT gen_random_uuid(), p.id, p.territory_id, s, s + interval '20 minutes',
               'manual', 'cabinet', 'sas', 'free'
        FROM practitioner p,
             generate_series(0, 2) AS d,
             LATERAL generate_series(
                 ((current_date + d) + time '08:00') AT TIME ZONE 'Europe/Paris',
                 ((current_date + d) + time '17:40') AT TIME ZONE 'Europe/Paris',
                 interval '20 minutes') AS s
        WHERE p.rpps = ANY($1::text[]) AND s > now()
        ON CONFLICT DO NOTHING
        """,
        [r for g in groups for r in g],
    )
    await conn.execute("ANALYZE slot")
    await conn.close()


async def main(seconds: float, workers: list[int]) -> None:
    url, key, groups = await platform_instance("creneau_bench_sas")
    dsn = url.replace("+asyncpg", "")
    await guide_directory(dsn)
    await dense_agendas(dsn, groups)
    queries = [guide_query(g) for g in groups]
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    key_digest = digest(key)
    platform = Caller(key_id=uuid.uuid4(), role="sas_platform")
    # Compiled as the API compiles them (app.db.DriverStatement).
    compiled = []
    for _, q in queries:
        statement, values = fhir_search.build_statement(platform, q)
        slots = DriverStatement(statement)
        compiled.append((slots.sql, slots.args(values)))
    contexts = DriverStatement(fhir_contexts.context_statement())

    # The key is looked up once: each server process then has its caller cached.
    await pool.fetchrow(KEY_STATEMENT.sql, key_digest)

    async def raw(i: int) -> bool:
        """The API's statements: the slots, then their practitioners' contexts."""
        sql, params = compiled[i % len(compiled)]
        async with pool.acquire() as conn:
            rows = await conn.fetch(sql, *params)
            found = list(dict.fromkeys(r["practitioner_id"] for r in rows))
            await conn.fetch(contexts.sql, *contexts.args({"practitioner_ids": found}))
        return True

    raws = {n: await closed_loop(n, seconds, raw) for n in (1, 4)}
    for b in raws.values():
        print(b.line("raw SQL"))
    for count in workers:
        server = Server(url, workers=count)
        try:
            server.wait_ready()
            async with LoadClient(server.url, headers={"Authorization": f"Bearer {key}"}) as client:
                first = await client.get(queries[0][0])
                bundle = first.json()
                print(
                    f"{count} uvicorn worker(s); guide search, 25 practitioners, 48 h: "
                    f"{bundle['total']} slots, {len(bundle['entry'])} entries, "
                    f"{len(first.content) / 1024:.0f} KiB an answer"
                )

                async def api(i: int) -> bool:
                    r = await client.get(queries[i % len(queries)][0])
                    return r.status_code == 200

                for n in (1, 4):
                    a = await closed_loop(n, seconds, api)
                    print(
                        f"{a.line('API')}  API/raw = {a.throughput / raws[n].throughput:.0%} "
                        "(target >= 30 %, p95 < 150 ms at 4 clients)"
                    )
        finally:
            server.stop()
    await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--workers", default="1,2", help="uvicorn worker processes, e.g. 1,2")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, [int(w) for w in args.workers.split(",")]))
