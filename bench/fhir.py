"""FHIR output at scale: the SMART Slot NDJSON of a 2,000-practitioner instance (time, bytes
and the server's peak RSS while it streams). The SAS guide's search is measured by bench/sas.py.

    .venv/bin/python -m bench.fhir
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import asyncpg
import httpx

from app.security import digest
from bench.common import Server, bench_database_url, fresh_database
from bench.search import materialize, seed

RPPS_OID = "urn:oid:1.2.250.1.71.4.2.1"


async def platform_key(dsn: str) -> tuple[str, list[list[str]]]:
    key = f"crn_bench_{uuid.uuid4().hex}"
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "INSERT INTO api_key (id, name, role, prefix, digest) "
        "VALUES ($1, 'bench platform', 'sas_platform', 'crn_bench', $2)",
        uuid.uuid4(),
        digest(key),
    )
    groups = await conn.fetch(
        "SELECT array_agg(rpps ORDER BY rpps) AS r FROM practitioner GROUP BY territory_id"
    )
    await conn.close()
    return key, [g["r"][:25] for g in groups]


async def stream_ndjson(server: Server, key: str) -> None:
    peak = server.rss_mb()
    before = peak
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, server.rss_mb())
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    size = lines = 0
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=300) as client,
        client.stream(
            "GET", "/fhir/$bulk-publish/Slot.ndjson", headers={"Authorization": f"Bearer {key}"}
        ) as r,
    ):
        async for chunk in r.aiter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - started
    stop.set()
    await sampler
    print(
        f"SMART Slot.ndjson: {lines} slots, {size / 2**20:.1f} MiB in {elapsed:.2f} s "
        f"({lines / elapsed:,.0f} slots/s); server RSS {before:.0f} MB before, "
        f"peak {peak:.0f} MB while streaming (target: flat, < 150 MB)"
    )


async def platform_instance(name: str) -> tuple[str, str, list[list[str]]]:
    """A fresh 2,000-practitioner instance with its 14 days of slots and a platform key:
    (database URL, key, 25 RPPS per territory)."""
    url = bench_database_url(name)
    dsn = url.replace("+asyncpg", "")
    await fresh_database(url)
    await seed(url)
    elapsed, result = await materialize(url)
    print(
        f"{result['slots_created']} slots for 2,000 practitioners (materialised in {elapsed:.1f} s)"
    )
    key, groups = await platform_key(dsn)
    conn = await asyncpg.connect(dsn)
    await conn.execute("ANALYZE")
    await conn.close()
    return url, key, groups


async def main() -> None:
    url, key, _ = await platform_instance("creneau_bench_fhir")
    server = Server(url)
    try:
        server.wait_ready()
        await stream_ndjson(server, key)
    finally:
        server.stop()


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    asyncio.run(main())
