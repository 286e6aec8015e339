"""bench.faults (c): a uvicorn worker killed with SIGKILL mid-load (2 workers): the other keeps
serving, the supervisor starts a replacement, and the database is consistent."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import asyncpg
import httpx
import psutil
from sqlalchemy.engine import make_url

from bench.common import (
    Server,
    bench_database_url,
    fresh_database,
)
from bench.fault_load import (
    Ledger,
    booking_load,
    check_books,
    future_slots,
    verdict,
)
from bench.load_seed import seed_department


async def wait_for_workers(server: Server, count: int, without: int = 0) -> list[int]:
    """The worker pids once there are `count` of them, none being `without` (30 s at most)."""
    deadline = time.monotonic() + 30
    pids = server.worker_pids()
    while (len(pids) != count or without in pids) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        pids = server.worker_pids()
    return pids


async def scenario_killed_worker(clients: int, seconds: float) -> None:
    print("\n(c) a uvicorn worker killed with SIGKILL during a booking load (2 workers)")
    url = bench_database_url("creneau_bench_faults_kill")
    dsn = url.replace("+asyncpg", "")
    database = url.rsplit("/", 1)[-1]
    await fresh_database(url)
    dept = await seed_department(
        dsn, territories=1, practices=20, gps_per_practice=3, regulators=4, history_days=0
    )
    from bench.search import materialize

    await materialize(url)
    slots = await future_slots(dsn)
    server = Server(url, workers=2, env={"DB_POOL_SIZE": "10", "DB_MAX_OVERFLOW": "5"})
    try:
        server.wait_ready()
        before = await wait_for_workers(server, 2)
        ledger = Ledger()
        origin = time.perf_counter()
        killed_at = 0.0
        victim = 0
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            open_at_kill: list[str] = []
            stop = asyncio.Event()

            async def kill() -> None:
                """SIGKILL a worker at a moment when it has a booking transaction open."""
                nonlocal killed_at, victim
                await asyncio.sleep(seconds / 3)
                conn = await asyncpg.connect(dsn)
                pg_port = make_url(url).port or 5432
                rows: list[asyncpg.Record] = []
                deadline = time.monotonic() + 5
                while not rows and time.monotonic() < deadline:
                    for pid in before:
                        ports = [
                            c.laddr.port
                            for c in psutil.Process(pid).net_connections("tcp")
                            if c.raddr and c.raddr.port == pg_port
                        ]
                        rows = await conn.fetch(
                            "SELECT state, left(query, 60) AS query FROM pg_stat_activity "
                            "WHERE client_port = ANY($1::int[]) AND xact_start IS NOT NULL",
                            ports,
                        )
                        if rows:
                            victim = pid
                            break
                victim = victim or before[0]
                os.kill(victim, signal.SIGKILL)
                killed_at = time.perf_counter() - origin
                await conn.close()
                open_at_kill.extend(f"{r['state']}: {r['query']}" for r in rows)
                await asyncio.sleep(seconds / 2)  # the load goes on after the kill
                stop.set()

            await asyncio.gather(
                booking_load(http, dept, slots, ledger, clients, seconds, stop=stop), kill()
            )
            after_kill = [a for a in ledger.attempts if a.started - origin > killed_at + 1]
            ok_after = sum(1 for a in after_kill if a.status in (201, 409))
            after = await wait_for_workers(server, 2, without=victim)
            print(
                f"workers {before}; killed {victim} at {killed_at:.1f} s with "
                f"{len(open_at_kill)} transaction(s) open {open_at_kill}; workers now {after}; "
                f"answers: {ledger.statuses()}"
            )
            verdict(
                "(c) the worker died mid-booking",
                bool(open_at_kill),
                f"{len(open_at_kill)} of its transactions were open when it was killed",
            )
            verdict(
                "(c) the service keeps serving",
                bool(after_kill) and ok_after == len(after_kill),
                f"{ok_after} of {len(after_kill)} booking requests sent from 1 s after the kill "
                f"were answered 201 or 409; "
                f"{len(ledger.unanswered())} lost their answer in the killed worker",
            )
            verdict(
                "(c) the supervisor replaces the worker",
                len(after) == 2 and victim not in after,
                f"worker processes after the kill: {after}",
            )
            await check_books("(c)", dsn, http, ledger)
            conn = await asyncpg.connect(dsn)
            seen = await conn.fetch(
                "SELECT pid, state, now() - xact_start AS age, left(query, 80) AS query, "
                "client_port FROM pg_stat_activity WHERE datname = $1 "
                "AND state LIKE 'idle in transaction%'",
                database,
            )
            await asyncio.sleep(1)
            # Left open: still there, in the same transaction, a second later.
            stuck = await conn.fetch(
                "SELECT pid, state, now() - xact_start AS age, left(query, 80) AS query, "
                "client_port FROM pg_stat_activity WHERE datname = $1 "
                "AND state LIKE 'idle in transaction%' AND now() - xact_start > interval '1 s'",
                database,
            )
            await conn.close()
            if seen:
                print(f"idle in transaction at the first look: {[dict(r) for r in seen]}")
            verdict(
                "(c) no transaction left open by the dead worker",
                not stuck,
                f"{len(stuck)} sessions idle in transaction {[dict(r) for r in stuck]}",
            )
    finally:
        server.stop()
