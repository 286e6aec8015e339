"""Shared pieces of the benchmarks: a fresh database, a server subprocess, a closed-loop load
driver, and percentile arithmetic. Benchmarks talk to 127.0.0.1 only and stop by themselves."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.dbtools import recreate_database, server_url, with_database  # noqa: E402


def bench_database_url(name: str) -> str:
    return os.environ.get("BENCH_DATABASE_URL") or with_database(server_url(), name)


async def fresh_database(url: str) -> None:
    from app.migrate import upgrade_to_head

    await recreate_database(url)
    await asyncio.to_thread(upgrade_to_head, url)


@dataclass
class LoadResponse:
    status_code: int
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


class LoadClient:
    """The load generator's HTTP client (keep-alive, 127.0.0.1 only). It runs on the same 2
    cores as the server, so it must be cheap: aiohttp spends about 1.2 ms of CPU per request
    here where httpx spends 4.8 ms, which the server would otherwise lose. (The service itself
    uses httpx for every outbound call.)"""

    def __init__(
        self, base_url: str, headers: dict[str, str] | None = None, timeout: float = 60
    ) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession(
            base_url=base_url,
            headers=headers,
            # Idle connections are dropped before uvicorn closes them (5 s).
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=3),
            timeout=aiohttp.ClientTimeout(total=timeout),
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> LoadResponse:
        """Retries once when the server closed an idle keep-alive connection just as it was
        reused (nothing was processed then)."""
        import aiohttp

        for attempt in (1, 2):
            try:
                async with self._session.request(
                    method, path, json=json, headers=headers, params=params
                ) as response:
                    return LoadResponse(response.status, await response.read())
            except aiohttp.ServerDisconnectedError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def get(self, path: str, **kw: Any) -> LoadResponse:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> LoadResponse:
        return await self.request("POST", path, **kw)

    async def __aenter__(self) -> LoadClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._session.close()


def load_errors() -> tuple[type[BaseException], ...]:
    """What a LoadClient call raises when the exchange fails."""
    import aiohttp

    return (aiohttp.ClientError, asyncio.TimeoutError)


async def copy_directory(
    conn: Any,
    territories: list[tuple[Any, ...]],
    practices: list[tuple[Any, ...]],
    practitioners: list[tuple[Any, ...]],
    rules: list[tuple[Any, ...]],
) -> None:
    """A seeded directory, by COPY: territories (id, name, timezone, department); practices
    (id, territory_id, name, address, commune_insee, lat, lon); GPs (id, practice_id,
    territory_id, rpps, family_name, given_name), who take no surnuméraires and no MT patients;
    rules (id, practitioner_id, rrule, start_time, end_time, slot_minutes, modality,
    visibility, valid_from)."""
    await conn.copy_records_to_table(
        "territory", records=territories, columns=["id", "name", "timezone", "department"]
    )
    await conn.copy_records_to_table(
        "practice",
        records=practices,
        columns=["id", "territory_id", "name", "address", "commune_insee", "lat", "lon"],
    )
    await conn.copy_records_to_table(
        "practitioner",
        records=[(*p, "general_practitioner", False, 0, 0) for p in practitioners],
        columns=["id", "practice_id", "territory_id", "rpps", "family_name", "given_name",
                 "profession", "accepts_overbooking", "overbooking_daily_cap", "mt_capacity"],
    )  # fmt: skip
    await conn.copy_records_to_table(
        "availability_rule",
        records=rules,
        columns=["id", "practitioner_id", "rrule", "start_time", "end_time", "slot_minutes",
                 "modality", "visibility", "valid_from"],
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """`creneau serve` in a subprocess on 127.0.0.1."""

    def __init__(
        self,
        database_url: str,
        workers: int = 1,
        env: dict[str, str] | None = None,
        log: Path | None = None,
    ) -> None:
        """`log`: a file for the server's own log (JSON lines), else discarded."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SCHEDULER_ENABLED": "false",
            "RATE_LIMIT_PER_MINUTE": "0",
            "LOG_LEVEL": "WARNING",
            "DB_POOL_SIZE": "20",
            "DB_MAX_OVERFLOW": "40",
            **(env or {}),
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.cli",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("ab") if log else subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not become ready")

    def rss_mb(self) -> float:
        """Resident memory of the server and its worker processes."""
        import psutil

        parent = psutil.Process(self.proc.pid)
        procs = [parent, *parent.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs) / 2**20

    def processes(self) -> dict[str, float]:
        """RSS in MB of each server process: the supervisor and each worker."""
        import psutil

        parent = psutil.Process(self.proc.pid)
        out = {f"main {parent.pid}": parent.memory_info().rss / 2**20}
        for pid in self.worker_pids():
            try:
                out[f"worker {pid}"] = psutil.Process(pid).memory_info().rss / 2**20
            except psutil.NoSuchProcess:
                continue
        return out

    def worker_pids(self) -> list[int]:
        """The uvicorn worker processes (with --workers > 1: the supervisor's spawned
        children; with one worker the main process serves)."""
        import psutil

        pids = []
        for child in psutil.Process(self.proc.pid).children():
            try:
                if "spawn_main" in " ".join(child.cmdline()):
                    pids.append(child.pid)
            except psutil.NoSuchProcess:
                continue
        return pids

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


@dataclass
class LoadResult:
    clients: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, round(p / 100 * (len(data) - 1)))]

    def line(self, label: str) -> str:
        return (
            f"{label:<10} clients={self.clients:<3} req/s={self.throughput:8.1f} "
            f"p50={self.pct(50):7.2f} ms p95={self.pct(95):7.2f} ms p99={self.pct(99):7.2f} ms "
            f"mean={statistics.fmean(self.latencies_ms) if self.latencies_ms else 0:7.2f} ms "
            f"errors={self.errors}"
        )


async def closed_loop(
    clients: int, seconds: float, call: Callable[[int], Awaitable[bool]], warmup: float = 1.0
) -> LoadResult:
    """`clients` concurrent loops, each calling `call(i)` back to back; only calls that start
    after the warm-up count. `call` returns False for an error."""
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    measure_from = started + warmup
    stop_at = measure_from + seconds

    async def loop(worker: int) -> None:
        nonlocal errors
        i = worker
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                return
            ok = await call(i)
            t1 = time.perf_counter()
            if t0 >= measure_from:
                latencies.append((t1 - t0) * 1000)
                if not ok:
                    errors += 1
            i += clients

    await asyncio.gather(*(loop(w) for w in range(clients)))
    return LoadResult(clients, len(latencies), errors, seconds, latencies)


# Consistency of bookings and slots, checked in SQL after a load or a fault.
CONSISTENCY_CHECKS = {
    # Two occupying bookings on one slot (the partial unique index forbids it).
    "double_bookings": """
        SELECT count(*) FROM (SELECT slot_id FROM booking
            WHERE slot_id IS NOT NULL AND status IN ('held','booked','honored','no_show')
            GROUP BY slot_id HAVING count(*) > 1) d""",
    # A booked (or honored / no-show) booking whose slot is not marked booked.
    "booking_on_unbooked_slot": """
        SELECT count(*) FROM booking b JOIN slot s ON s.id = b.slot_id
        WHERE b.status IN ('booked','honored','no_show') AND s.status <> 'booked'""",
    # A slot marked booked with no booking occupying it: half-booked.
    "booked_slot_without_booking": """
        SELECT count(*) FROM slot s WHERE s.status = 'booked' AND NOT EXISTS (
            SELECT 1 FROM booking b WHERE b.slot_id = s.id
            AND b.status IN ('booked','honored','no_show'))""",
    # A held slot and its held booking must agree on the hold.
    "held_slot_without_hold": """
        SELECT count(*) FROM slot s WHERE s.status = 'held' AND NOT EXISTS (
            SELECT 1 FROM booking b WHERE b.slot_id = s.id AND b.status = 'held')""",
    "hold_on_unheld_slot": """
        SELECT count(*) FROM booking b JOIN slot s ON s.id = b.slot_id
        WHERE b.status = 'held' AND s.status <> 'held'""",
    # Every booking change leaves its activity event (same transaction).
    "booking_without_event": """
        SELECT count(*) FROM booking b WHERE b.booked_at IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM activity_event e WHERE e.subject_id = b.id
            AND e.type IN ('booking.booked', 'booking.overbooked'))""",
}


async def consistency(dsn: str) -> dict[str, int]:
    """Each check's count of violating rows (all must be 0)."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return {name: int(await conn.fetchval(sql)) for name, sql in CONSISTENCY_CHECKS.items()}
    finally:
        await conn.close()
