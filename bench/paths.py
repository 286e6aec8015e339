"""The server CPU of the load mix's costliest writes, one request at a time: a booking's
cancel, a one-off slot's publication and a rule's publication (bench.load's requests).

Seeds a small department (bench.load's, 1 CPTS, 30 GPs, no history), starts `creneau serve`
on 127.0.0.1 against its own database, books `--requests` slots (not measured), then, for
each of `--rounds` rounds, sends `--requests` of each kind in turn and prints the CPU the
server process and this database's PostgreSQL backends used per request. CPU time varies
less than latency with what else runs on the cores; run old and new code alternately.

    .venv/bin/python -m bench.paths [--requests 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import statistics
import time
import uuid
from datetime import date, timedelta

import asyncpg

from bench.common import LoadClient, Server, bench_database_url, fresh_database
from bench.load_cpu import CpuMeter
from bench.load_mix import PATIENT, Mix
from bench.load_seed import seed_department
from bench.search import materialize

KINDS = ("cancel", "publish_slot", "publish_rule")


class PathsMix(Mix):
    rule_counter = itertools.count()

    def rule_day_and_hour(self, n: int) -> tuple[date, int]:
        """From 20:00 to 23:00 so that more of bench.load's rules fit: unique per GP, day
        and hour."""
        k = n // len(self.dept.gps)
        return date.today() + timedelta(days=1 + k % 13), 20 + (k // 13) % 4


async def _bookable(dsn: str, n: int) -> list[str]:
    conn = await asyncpg.connect(dsn)
    rows = await conn.fetch(
        "SELECT id FROM slot WHERE status = 'free' AND start > now() + interval '2 hours' "
        "ORDER BY start, id LIMIT $1",
        n,
    )
    await conn.close()
    return [str(r["id"]) for r in rows]


async def _book(mix: Mix, slots: list[str]) -> None:
    """Bookings for the cancels to come (not measured)."""
    for slot in slots:
        r = await mix.http.post(
            "/v1/bookings",
            json={"slot_id": slot, "patient": PATIENT, "sas_case_ref": "SAS15-PATHS"},
            headers={**mix._regulator(random.Random()), "Idempotency-Key": uuid.uuid4().hex},
        )
        assert r.status_code == 201, r.content
        mix.booked.append(r.json()["id"])


async def main(requests: int, rounds: int) -> None:
    url = bench_database_url("creneau_bench_paths")
    dsn = url.replace("+asyncpg", "")
    database = url.rsplit("/", 1)[-1]
    await fresh_database(url)
    dept = await seed_department(dsn, territories=1, practices=10, regulators=2, history_days=0)
    await materialize(url)
    warmup = 5
    slots = await _bookable(dsn, (requests + warmup) * rounds)
    server = Server(url)
    results: dict[str, list[tuple[float, float, float]]] = {k: [] for k in KINDS}
    try:
        server.wait_ready()
        meter = CpuMeter(server, database)
        async with LoadClient(server.url, timeout=30) as http:
            mix = PathsMix(http, dept)
            rng = random.Random(7)
            await _book(mix, slots)
            for kind in KINDS:  # warm up: first statements, prepared statement caches
                for _ in range(warmup):
                    assert (await mix.call(kind, rng))[1] == "ok"
            for _ in range(rounds):
                for kind in KINDS:
                    latencies = []
                    before = meter.read()
                    for _ in range(requests):
                        t0 = time.perf_counter()
                        sent, outcome = await mix.call(kind, rng)
                        latencies.append((time.perf_counter() - t0) * 1000)
                        assert (sent, outcome) == (kind, "ok"), (sent, outcome)
                    used = CpuMeter.seconds(before, meter.read())
                    results[kind].append(
                        (
                            used["server"] * 1000 / requests,
                            used["postgres"] * 1000 / requests,
                            statistics.median(latencies),
                        )
                    )
    finally:
        server.stop()
    print(f"CPU per request (ms), {requests} sequential requests a kind, {rounds} rounds:")
    head = f"{'kind':<13} {'server (each round)':<24} {'median':>6} {'PostgreSQL':>10} {'p50':>6}"
    print(f"    {head}")
    for kind, runs in results.items():
        server_ms = [r[0] for r in runs]
        each = " ".join(f"{v:5.2f}" for v in server_ms)
        print(
            f"    {kind:<13} {each:<24} {statistics.median(server_ms):6.2f} "
            f"{statistics.median(r[1] for r in runs):10.2f} "
            f"{statistics.median(r[2] for r in runs):6.1f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds))
