"""Booking throughput under contention: clients race to book 1,000 slots, through the HTTP API
(uvicorn subprocess) and through the same transaction run raw with asyncpg, in the same run.

Each client books random slots of the pool until every slot is taken; a 409 sends it to another
slot. The raw side runs the API's transaction with the API's own SQL (key lookup, idempotency
claim and record, take, record), without HTTP, FastAPI, pydantic or SQLAlchemy.

Prints bookings/s, attempts/s, p50/p95 latency of attempts, and the double bookings found
in SQL afterwards (must be 0).

    .venv/bin/python -m bench.booking [--clients 1,4,10,100] [--slots 1000] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg

from app.directory.callers import KEY_STATEMENT
from app.idempotency import _CLAIM, _STORE
from app.scheduling.booking_creation import _RECORD, _SLOT_STATE, _TAKE
from app.scheduling.booking_models import BOOKING_COLUMNS
from app.security import digest
from bench.common import LoadClient, LoadResult, Server, bench_database_url, fresh_database

ENDPOINT = "POST /v1/bookings"
PATIENT = {
    "family_name": "Bench",
    "given_name": "Patient",
    "birth_date": "1980-01-01",
    "phone": "+33612345678",
}


async def seed(dsn: str, n_slots: int) -> tuple[list[uuid.UUID], str, uuid.UUID]:
    conn = await asyncpg.connect(dsn)
    tid, pid, rid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        "INSERT INTO territory (id, name, timezone, department) "
        "VALUES ($1, 'CPTS bench', 'Europe/Paris', '15')",
        tid,
    )
    await conn.execute(
        "INSERT INTO practice (id, territory_id, name, address, commune_insee, "
        "lat, lon) VALUES ($1, $2, 'MSP', '1 rue', '15014', 44.9, 2.4)",
        pid,
        tid,
    )
    practitioners = [uuid.uuid4() for _ in range(50)]
    await conn.executemany(
        "INSERT INTO practitioner (id, practice_id, territory_id, rpps, family_name, given_name,"
        " profession, accepts_overbooking, overbooking_daily_cap, mt_capacity) VALUES "
        "($1, $2, $3, $4, 'Nom', 'Prénom', 'general_practitioner', false, 0, 0)",
        [(g, pid, tid, f"{10_000_000_000 + i:011d}") for i, g in enumerate(practitioners)],
    )
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    slots = []
    for i in range(n_slots):
        gp = practitioners[i % 50]
        s = start + timedelta(minutes=15 * (i // 50))
        slots.append((uuid.uuid4(), gp, tid, s, s + timedelta(minutes=15)))
    await conn.copy_records_to_table(
        "slot",
        records=[(*s, "manual", "cabinet", "sas", "free") for s in slots],
        columns=[
            "id",
            "practitioner_id",
            "territory_id",
            "start",
            "end",
            "source",
            "modality",
            "visibility",
            "status",
        ],
    )
    await conn.execute("INSERT INTO regulator (id, name, department) VALUES ($1, 'SAS', '15')", rid)
    await conn.execute("INSERT INTO regulator_territory VALUES ($1, $2)", rid, tid)
    key = f"crn_bench_{uuid.uuid4().hex}"
    await conn.execute(
        "INSERT INTO api_key (id, name, role, prefix, digest, regulator_id) "
        "VALUES ($1, 'bench', 'regulator', 'crn_bench', $2, $3)",
        uuid.uuid4(),
        digest(key),
        rid,
    )
    await conn.close()
    return [s[0] for s in slots], key, rid


async def reset(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "DELETE FROM booking; DELETE FROM idempotency_record; "
        "UPDATE slot SET status = 'free', hold_expires_at = NULL"
    )
    await conn.close()


async def race(
    clients: int, slot_ids: list[uuid.UUID], attempt: callable[[uuid.UUID], object]
) -> tuple[LoadResult, float, int]:
    taken: set[uuid.UUID] = set()
    latencies: list[float] = []
    errors = 0
    booked = 0
    started = time.perf_counter()

    async def client(seed_: int) -> None:
        nonlocal errors, booked
        rng = random.Random(seed_)
        while len(taken) < len(slot_ids):
            free = [s for s in rng.sample(slot_ids, min(20, len(slot_ids))) if s not in taken]
            slot = free[0] if free else next((s for s in slot_ids if s not in taken), None)
            if slot is None:
                return
            t0 = time.perf_counter()
            outcome = await attempt(slot)
            latencies.append((time.perf_counter() - t0) * 1000)
            if outcome == "booked":
                booked += 1
                taken.add(slot)
            elif outcome == "taken":
                taken.add(slot)
            else:
                errors += 1

    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    return LoadResult(clients, len(latencies), errors, elapsed, latencies), elapsed, booked


async def raw_booking(
    c: asyncpg.Connection,
    caller: asyncpg.Record,
    slot: uuid.UUID,
    *,
    idempotency_key: str,
    body_hash: str,
    response: str,
) -> str:
    """The API's booking transaction, statement for statement, with the API's own SQL: the
    idempotency claim, the take, the record (booking, event, webhooks), the idempotency
    record; a slot already taken is looked up (the 409's reason) and rolled back. `caller` is
    the key lookup's row, read once, as each server process caches it."""
    now = datetime.now(UTC)
    async with c.transaction():
        ttl = timedelta(hours=24)
        await c.fetchval(_CLAIM, caller["id"], idempotency_key, ENDPOINT, body_hash, ttl)
        taken = await c.fetchrow(
            _TAKE.sql,
            *_TAKE.args(
                {
                    "slot_id": slot,
                    "now": now,
                    "territory_ids": list(caller["linked_territory_ids"]),
                    "status": "booked",
                    "hold_until": None,
                }
            ),
        )
        if taken is None:
            await c.fetchrow(_SLOT_STATE.sql, slot)
            raise Taken
        booking_id = uuid.uuid4()
        columns = {name: None for name in BOOKING_COLUMNS} | {
            "id": booking_id,
            "slot_id": slot,
            "practitioner_id": taken["practitioner_id"],
            "practice_id": taken["practice_id"],
            "territory_id": taken["territory_id"],
            "regulator_id": caller["regulator_id"],
            "created_by_key_id": caller["id"],
            "status": "booked",
            "start": taken["start"],
            "end": taken["end"],
            "modality": taken["modality"],
            "overbooked": False,
            "created_at": now,
            "booked_at": now,
            "patient_family_name": PATIENT["family_name"],
            "patient_given_name": PATIENT["given_name"],
            "patient_birth_date": date(1980, 1, 1),
            "patient_phone": PATIENT["phone"],
        }
        await c.execute(
            _RECORD.sql,
            *_RECORD.args(
                columns
                | {
                    "event_type": "booking.booked",
                    "event_created": now.isoformat(),
                    "webhook_data": json.dumps({"booking": {"id": str(booking_id)}}),
                    "event_data": json.dumps({"modality": taken["modality"]}),
                }
            ),
        )
        await c.execute(_STORE, caller["id"], idempotency_key, 201, response)
    return "booked"


class Taken(Exception):
    pass


async def main(client_counts: list[int], n_slots: int, workers: int) -> None:
    url = bench_database_url("creneau_bench_booking")
    dsn = url.replace("+asyncpg", "")
    await fresh_database(url)
    slot_ids, key, _ = await seed(dsn, n_slots)
    # The server and the raw side may open the same number of connections (40 in all).
    per_worker = 40 // workers
    server = Server(
        url,
        workers=workers,
        env={"DB_POOL_SIZE": str(per_worker // 2), "DB_MAX_OVERFLOW": str(per_worker // 2)},
        log=Path(os.environ.get("BENCH_SERVER_LOG", "/dev/null")),
    )
    try:
        server.wait_ready()
        async with LoadClient(server.url, headers={"Authorization": f"Bearer {key}"}) as http:

            async def api_attempt(slot: uuid.UUID) -> str:
                r = await http.post(
                    "/v1/bookings",
                    json={"slot_id": str(slot), "patient": PATIENT},
                    headers={"Idempotency-Key": uuid.uuid4().hex},
                )
                return {201: "booked", 409: "taken"}.get(r.status_code, "error")

            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=min(max(client_counts), 40))
            caller = await pool.fetchrow(
                KEY_STATEMENT.sql, *KEY_STATEMENT.args({"digest": digest(key)})
            )

            # A response of the API's size, stored as the API stores it.
            response = json.dumps({"id": str(uuid.uuid4()), "patient": PATIENT, "pad": "x" * 700})

            async def raw_attempt(slot: uuid.UUID) -> str:
                async with pool.acquire() as c:
                    try:
                        return await raw_booking(
                            c,
                            caller,
                            slot,
                            idempotency_key=uuid.uuid4().hex,
                            body_hash=uuid.uuid4().hex * 2,
                            response=response,
                        )
                    except Taken:
                        return "taken"

            print(
                f"{n_slots} slots, 50 practitioners; clients race until every slot is booked; "
                f"{workers} uvicorn worker(s)"
            )
            for n in client_counts:
                for label, attempt in (("API", api_attempt), ("raw SQL", raw_attempt)):
                    await reset(dsn)
                    result, elapsed, booked = await race(n, slot_ids, attempt)
                    check = await asyncpg.connect(dsn)
                    doubles = await check.fetchval(
                        "SELECT count(*) FROM (SELECT slot_id FROM booking WHERE status IN "
                        "('held','booked') GROUP BY slot_id HAVING count(*) > 1) d"
                    )
                    await check.close()
                    print(
                        f"{label:<8} clients={n:<4} bookings/s={booked / elapsed:7.1f} "
                        f"attempts/s={result.throughput:7.1f} p50={result.pct(50):6.1f} ms "
                        f"p95={result.pct(95):6.1f} ms booked={booked} errors={result.errors} "
                        f"double_bookings={doubles}"
                    )
                    if label == "API":
                        api_rate = booked / elapsed
                    else:
                        print(
                            f"{'':<8} API/raw bookings/s = {api_rate / (booked / elapsed):.0%}"
                            "  (target >= 40 %, p95 < 50 ms)"
                        )
            print(f"server RSS: {server.rss_mb():.0f} MB")
            await pool.close()
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,4,10,100")
    parser.add_argument("--slots", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args()
    asyncio.run(main([int(c) for c in args.clients.split(",")], args.slots, args.workers))
