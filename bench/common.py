"""Shared pieces of the benchmarks: a fresh database, a server subprocess, a closed-loop load
driver, and percentile arithmetic. Benchmarks talk to 127.0.0.1 only and stop by themselves."""

from __future__ import annotations

import asyncio
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """`creneau serve` in a subprocess on 127.0.0.1."""

    def __init__(self, database_url: str, workers: int = 1) -> None:
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
            stderr=subprocess.DEVNULL,
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
