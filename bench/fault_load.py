"""bench.faults' booking load with a ledger of what each client was told, and the checks that
follow a fault: every booking answered is in the database, a request left unanswered and
retried with its Idempotency-Key books once at most, slots and bookings agree; the verdicts."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field

import asyncpg
import httpx

from bench.common import (
    LoadResult,
    consistency,
)
from bench.load_mix import PATIENT
from bench.load_seed import Department

RESULTS: list[tuple[str, bool, str]] = []


def verdict(name: str, ok: bool, detail: str) -> None:
    RESULTS.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")


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
