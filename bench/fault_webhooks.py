"""bench.faults (b): webhook receivers that time out or answer 500, booking latency compared
with a healthy receiver and with no webhook at all, while the outbox keeps trying."""

from __future__ import annotations

import asyncio
import logging
import uuid

import asyncpg
import httpx
import psutil

from bench.common import (
    LoadResult,
    Server,
    bench_database_url,
    consistency,
    fresh_database,
)
from bench.fault_load import (
    Ledger,
    booking_load,
    future_slots,
    verdict,
)
from bench.load_seed import seed_department


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
