"""A department's traffic through the HTTP API: regulators searching and booking, practices
publishing and reading their agendas, dashboards and the SAS platform reading, mixed.

Seeds one department (4 CPTS territories, 100 practices, 300 GPs with two rules each, 14 days
of slots, a year of activity history), starts `creneau serve --workers N` on 127.0.0.1 against
its own database, and for N = 1 and 2:

- closed loop at rising concurrency (1, 4, 10, 25, 50 clients, each sending the next request
  as soon as the previous one answered);
- open loop at fixed arrival rates (`--rate`, Poisson arrivals, latency measured from the
  scheduled arrival, so a server that falls behind is not flattered).

Each step prints requests/s, p50/p95/p99 overall and per kind of request, errors (any
unexpected status or transport error; a 409 slot-unavailable when two regulators race for a
slot is expected and counted apart), the CPU used by the server, by this database's PostgreSQL
backends and by the load generator, and the RSS of each server process. Bookings are reset
between steps so that every step sees the same supply. At the end the bookings are checked
for consistency in SQL.

    .venv/bin/python -m bench.load [--workers 1,2] [--clients 1,4,10,25,50] [--seconds 15]
                                   [--rate 300,100] [--rate-seconds 30] [--mix kind=n,...]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

import asyncpg
import psutil

from bench.common import (
    LoadClient,
    LoadResult,
    Server,
    bench_database_url,
    consistency,
    fresh_database,
)
from bench.load_cpu import CpuMeter
from bench.load_mix import KINDS, MIX, Mix, Stats
from bench.load_seed import reset_bookings, seed_department
from bench.search import materialize


def print_step(label: str, stats: Stats, server: Server, cpu: str) -> None:
    total = stats.result()
    conflicts = sum(stats.conflicts.values())
    print(
        f"{label}: {total.throughput:7.1f} req/s  p50 {total.pct(50):6.1f}  "
        f"p95 {total.pct(95):6.1f}  p99 {total.pct(99):6.1f} ms  errors {total.errors}  "
        f"booking races lost (409) {conflicts}"
    )
    for kind in KINDS:
        r = stats.result(kind)
        if r.requests:
            print(
                f"    {kind:<13} {r.requests:6d} req  p50 {r.pct(50):6.1f}  p95 {r.pct(95):6.1f}"
                f"  p99 {r.pct(99):6.1f} ms  errors {r.errors}"
            )
    if stats.errors:
        print(f"    errors: {dict(stats.errors.most_common(5))}")
    rss = ", ".join(f"{name} {mb:.0f} MB" for name, mb in server.processes().items())
    print(f"    {cpu}")
    print(f"    RSS: {rss}")


COST_SAMPLES = {"book": 60, "cancel": 30, "dashboard": 20}


async def measure_costs(mix: Mix, meter: CpuMeter, samples: int = 40) -> None:
    """Each kind alone, one request at a time: the CPU it costs the server, PostgreSQL and
    this load generator. CPU time is little affected by other programs sharing the cores,
    unlike latency, so this gives the capacity of idle cores for the mix."""
    rng = random.Random(3)
    for _ in range(10):
        await mix.search(rng)  # warm up, and slots to book
    print("CPU per request, each kind alone, sequential (ms):")
    print(f"    {'kind':<13} {'latency p50':>11} {'server':>7} {'PostgreSQL':>10} {'generator':>9}")
    weighted = {"server": 0.0, "postgres": 0.0, "driver": 0.0}
    total_weight = sum(mix.weights)
    for kind, weight in zip(KINDS, mix.weights, strict=True):
        n = COST_SAMPLES.get(kind, samples)
        latencies = []
        before = meter.read()
        for _ in range(n):
            t0 = time.perf_counter()
            sent, outcome = await mix.call(kind, rng)
            latencies.append((time.perf_counter() - t0) * 1000)
            if outcome not in ("ok", "conflict") or sent != kind:
                print(f"    {kind}: {sent} {outcome}")
        used = CpuMeter.seconds(before, meter.read())
        per = {k: used[k] * 1000 / n for k in weighted}
        for k in weighted:
            weighted[k] += per[k] * weight / total_weight
        lat = LoadResult(1, n, 0, 1, latencies)
        print(
            f"    {kind:<13} {lat.pct(50):11.1f} {per['server']:7.1f} {per['postgres']:10.1f} "
            f"{per['driver']:9.1f}"
        )
    total = sum(weighted.values())
    cores = psutil.cpu_count()
    print(
        f"    the mix, weighted: server {weighted['server']:.1f} + PostgreSQL "
        f"{weighted['postgres']:.1f} + generator {weighted['driver']:.1f} = {total:.1f} ms of "
        f"CPU a request: at most {cores * 1000 / total:.0f} req/s on {cores} idle cores, "
        f"{cores * 1000 / (total - weighted['driver']):.0f} without the generator"
    )


async def closed_step(mix: Mix, clients: int, seconds: float, warmup: float) -> Stats:
    stats = Stats(seconds=seconds)
    measure_from = time.perf_counter() + warmup
    stop_at = measure_from + seconds

    async def client(i: int) -> None:
        rng = random.Random(i)
        while (t0 := time.perf_counter()) < stop_at:
            kind, outcome = await mix.call(rng.choices(KINDS, mix.weights)[0], rng)
            if t0 >= measure_from:
                stats.add(kind, (time.perf_counter() - t0) * 1000, outcome)

    await asyncio.gather(*(client(i) for i in range(clients)))
    return stats


async def open_step(
    mix: Mix,
    rate: float,
    seconds: float,
    warmup: float,
    in_flight: int = 100,
    drain: float = 20.0,
) -> tuple[Stats, float]:
    """Poisson arrivals at `rate` per second; each request's latency runs from its scheduled
    arrival, including any wait for one of the `in_flight` connections (as a proxy's queue
    would). Requests still unanswered `drain` seconds after the last arrival are abandoned and
    counted as errors, so that an overloaded run stays bounded in time. Returns the stats and
    the largest lag of the dispatcher behind the schedule."""
    stats = Stats(seconds=seconds)
    rng = random.Random(7)
    slots = asyncio.Semaphore(in_flight)
    tasks: dict[asyncio.Task[None], tuple[str, float]] = {}
    started = time.perf_counter()
    measure_from = started + warmup
    stop_at = measure_from + seconds
    lag = 0.0
    last_done = stop_at

    async def one(kind: str, scheduled: float, client_rng: random.Random) -> None:
        nonlocal last_done
        async with slots:
            sent, outcome = await mix.call(kind, client_rng)
        if scheduled >= measure_from:
            done = time.perf_counter()
            stats.add(sent, (done - scheduled) * 1000, outcome)
            last_done = max(last_done, done)

    at = started
    while at < stop_at:
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            lag = max(lag, -delay)
        kind = rng.choices(KINDS, mix.weights)[0]
        task = asyncio.create_task(one(kind, at, random.Random(rng.random())))
        tasks[task] = (kind, at)
        at += rng.expovariate(rate)
    _, pending = await asyncio.wait(tasks, timeout=drain)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
        now = time.perf_counter()
        for task in pending:
            kind, scheduled = tasks[task]
            if scheduled >= measure_from:
                stats.add(kind, (now - scheduled) * 1000, f"no answer within {drain:.0f} s")
                stats.abandoned[kind] += 1
        last_done = now
    # Served rate: the window's requests over the time it took to answer them all.
    stats.seconds = last_done - measure_from
    return stats, lag


async def main(
    workers: list[int],
    clients: list[int],
    seconds: float,
    rates: list[float],
    rate_seconds: float,
    warmup: float,
    weights: dict[str, int],
) -> None:
    url = bench_database_url("creneau_bench_load")
    dsn = url.replace("+asyncpg", "")
    database = url.rsplit("/", 1)[-1]
    await fresh_database(url)
    t0 = time.perf_counter()
    dept = await seed_department(dsn)
    elapsed, _ = await materialize(url)
    conn = await asyncpg.connect(dsn)
    await conn.execute("ANALYZE")
    slots = await conn.fetchval("SELECT count(*) FROM slot")
    await conn.close()
    print(
        f"department: {len(dept.territories)} CPTS, {len(dept.gps)} GPs, {slots:,} slots over "
        f"14 days (materialised in {elapsed:.1f} s), seeded in {time.perf_counter() - t0:.1f} s"
    )
    print(f"mix (%): {weights}")
    print(
        f"closed loop: {seconds:.0f} s a step after {warmup:.0f} s of warm-up; open loop: "
        f"{', '.join(f'{r:.0f}' for r in rates) or 'no'} req/s for {rate_seconds:.0f} s. "
        "The load generator runs on the same "
        f"{psutil.cpu_count()} cores as the server and PostgreSQL (and whatever else runs).\n"
    )
    summary = []
    for n_workers in workers:
        # Connections kept for the most clients, split between the workers: one past a pool's
        # size is opened and closed request by request, which would load the larger steps.
        per_worker = -(-max(clients) // n_workers)
        server = Server(
            url,
            workers=n_workers,
            env={"DB_POOL_SIZE": str(per_worker), "DB_MAX_OVERFLOW": "10"},
        )
        try:
            server.wait_ready()
            rss = ", ".join(f"{k} {v:.0f} MB" for k, v in server.processes().items())
            print(f"== {n_workers} worker(s); RSS at rest: {rss}")
            meter = CpuMeter(server, database)
            async with LoadClient(server.url, timeout=30) as http:
                mix = Mix(http, dept, weights)
                if n_workers == workers[0]:
                    await reset_bookings(dsn)
                    await measure_costs(mix, meter)
                for n in clients:
                    await reset_bookings(dsn)
                    mix.reset()
                    before = meter.read()
                    stats = await closed_step(mix, n, seconds, warmup)
                    cpu = CpuMeter.line(before, meter.read())
                    print_step(f"workers={n_workers} clients={n:<3}", stats, server, cpu)
                    r = stats.result()
                    summary.append((n_workers, f"{n} clients", r, stats))
                for rate in rates:
                    await reset_bookings(dsn)
                    mix.reset()
                    before = meter.read()
                    # No warm-up: the server is warm, and every request offered counts.
                    stats, lag = await open_step(mix, rate, rate_seconds, 0.0)
                    cpu = CpuMeter.line(before, meter.read())
                    print_step(f"workers={n_workers} open loop {rate:.0f}/s", stats, server, cpu)
                    print(f"    dispatcher lag behind schedule at most {lag * 1000:.0f} ms")
                    r = stats.result()
                    summary.append((n_workers, f"{rate:.0f}/s open", r, stats))
                    verdict = r.pct(95) < 100 and r.errors == 0 and r.throughput >= 0.97 * rate
                    print(
                        f"    {rate:.0f} req/s offered, {r.throughput:.0f} served; p95 < 100 ms "
                        f"and no error: {'MET' if verdict else 'NOT MET'}"
                    )
            print()
        finally:
            server.stop()
    checks = await consistency(dsn)
    print(f"consistency after the run (all must be 0): {checks}")
    print("\nsummary")
    print("| workers | load | req/s | p50 ms | p95 ms | p99 ms | errors | races lost (409) |")
    print("|---|---|---|---|---|---|---|---|")
    for n_workers, label, r, stats in summary:
        print(
            f"| {n_workers} | {label} | {r.throughput:.0f} | {r.pct(50):.1f} | {r.pct(95):.1f} "
            f"| {r.pct(99):.1f} | {r.errors} | {sum(stats.conflicts.values())} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--clients", default="1,4,10,25,50")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rate", default="300", help="open-loop rates, e.g. 300,100 (0: none)")
    parser.add_argument("--rate-seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--mix", default="", help="overrides, e.g. dashboard=10,search=54")
    args = parser.parse_args()
    weights = dict(MIX)
    for item in filter(None, args.mix.split(",")):
        name, _, value = item.partition("=")
        if name not in weights:
            parser.error(f"unknown kind {name!r}; kinds: {', '.join(KINDS)}")
        weights[name] = int(value)
    asyncio.run(
        main(
            [int(w) for w in args.workers.split(",")],
            [int(c) for c in args.clients.split(",")],
            args.seconds,
            [float(r) for r in args.rate.split(",") if float(r) > 0],
            args.rate_seconds,
            args.warmup,
            weights,
        )
    )
