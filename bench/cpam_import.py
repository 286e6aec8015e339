"""The import of an Assurance Maladie list: 5,000 lines into a territory whose queue already
holds about 2,000 requests, line by line (app.medecin_traitant.cpam_lines, two statements or
more a line) and in batches of 500 (cpam_queue: five statements a batch). Each run imports
the same file into the same queue, in a transaction rolled back afterwards; both must give the
same created / merged / rejected counts. The raw side replays, on the asyncpg connection, the
very statements the batch import sent (their SQL and parameters as captured): the database's
share of it, without the parsing, the decisions, SQLAlchemy or the ORM.

    .venv/bin/python -m bench.cpam_import [--lines 5000] [--queue 2000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import event

from app.db import make_engine, make_sessionmaker
from app.directory.models import Territory
from app.medecin_traitant.cpam_import import import_list
from bench.common import bench_database_url, fresh_database

HEADER = "NOM;PRENOM;DATE_NAISSANCE;TELEPHONE;NIR;CODE_INSEE;ALD;C2S"
NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def ins_of(n: int) -> str:
    body = f"1{n % 100:02d}0175{n // 100:06d}"
    return f"{body}{97 - int(body) % 97:02d}"


def patient(n: int) -> tuple[str, str, date, str]:
    return (f"NOM{n}", "Prénom", date(1930 + n % 80, 1 + n % 12, 1 + n % 28), f"+336{n:08d}")


def seed_rows(territory_id: uuid.UUID, queue: int) -> list[tuple[Any, ...]]:
    """Patients 0..queue-1 already waiting: one in two with their INS."""
    rows: list[tuple[Any, ...]] = []
    for n in range(queue):
        family, given, born, phone = patient(n)
        rows.append(
            (uuid.uuid4(), territory_id, "waiting", "hotline", n % 7 == 0, False, False,
             NOW - timedelta(days=n % 400), [], family, given, born, phone,
             ins_of(n) if n % 2 else None, None)
        )  # fmt: skip
    return rows


def cpam_list(lines: int, queue: int, seed: int = 42) -> bytes:
    """Half the queue again (by name, birth date and phone, with or without the INS to fill
    in, or by the INS alone under another spelling), new patients, some twice, 2 % of bad
    lines, and a few matching two requests (one's INS, another's name)."""
    rng = random.Random(seed)
    out = [HEADER]
    new = queue
    for i in range(lines):
        roll = rng.random()
        if roll < 0.02:
            out.append(f"SANSTEL{i};Paul;01/01/1970;;;;;")
            continue
        if roll < 0.025:  # patient n's name, the INS of another waiting patient
            n = rng.randrange(0, queue - 1, 2)
            family, given, born, phone = patient(n)
            out.append(f"{family};{given};{born:%d/%m/%Y};{phone};{ins_of(n + 1)};;1;")
            continue
        if roll < 0.25:  # in the queue
            n = rng.randrange(queue)
            family, given, born, phone = patient(n)
            if rng.random() < 0.3 and n % 2:
                family = family.lower() + "-x"  # another spelling: found by the INS only
            out.append(
                f"{family.upper()};{given};{born:%d/%m/%Y};{phone};{ins_of(n)};15014;"
                f"{rng.choice(['1', ''])};{rng.choice(['oui', ''])}"
            )
            continue
        if roll < 0.28 and new > queue:  # a new patient seen earlier in the file
            n = rng.randrange(queue, new)
        else:
            n, new = new, new + 1
        family, given, born, phone = patient(n)
        out.append(f"{family};{given};{born:%d/%m/%Y};{phone};{ins_of(n)};;;")
    return ("\r\n".join(out) + "\r\n").encode("cp1252")


async def prepare(url: str, queue: int) -> uuid.UUID:
    await fresh_database(url)
    engine = make_engine(url, pool_size=1, max_overflow=0)
    async with make_sessionmaker(engine)() as session:
        t = Territory(name="CPTS Bench", timezone="Europe/Paris", department="15")
        session.add(t)
        await session.commit()
        territory_id = t.id
    await engine.dispose()
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await conn.copy_records_to_table(
            "mt_request",
            records=seed_rows(territory_id, queue),
            columns=["id", "territory_id", "status", "source", "ald", "precarity",
                     "criteria_to_check", "registered_at", "preferred_communes",
                     "patient_family_name", "patient_given_name", "patient_birth_date",
                     "patient_phone", "patient_ins", "patient_commune_insee"],
        )  # fmt: skip
        await conn.execute("ANALYZE mt_request")
    finally:
        await conn.close()
    return territory_id


async def run_import(
    url: str, territory_id: uuid.UUID, data: bytes, batch_lines: int | None
) -> tuple[float, list[tuple[str, Any, bool]], tuple[int, int, int]]:
    """One import, rolled back: seconds, the statements sent (SQL, parameters, executemany)
    and the counts."""
    engine = make_engine(url, pool_size=1, max_overflow=0)
    sent: list[tuple[str, Any, bool]] = []
    try:
        async with engine.connect() as conn:
            await conn.begin()

            def capture(c: Any, cursor: Any, sql: str, params: Any, ctx: Any, many: bool) -> None:
                sent.append((sql, params, many))

            event.listen(conn.sync_connection, "before_cursor_execute", capture)
            session = make_sessionmaker(engine)(bind=conn, join_transaction_mode="create_savepoint")
            started = time.perf_counter()
            out = await import_list(
                session, None, data, territory_id=territory_id, mapping=None, dry_run=False,
                batch_lines=batch_lines,
            )  # fmt: skip
            seconds = time.perf_counter() - started
            event.remove(conn.sync_connection, "before_cursor_execute", capture)
            await session.close()
            await conn.rollback()
    finally:
        await engine.dispose()
    return seconds, sent, (out.created, out.merged, out.rejected)


async def replay(url: str, sent: list[tuple[str, Any, bool]]) -> float:
    """The statements as sent, on asyncpg, in a transaction rolled back: seconds."""
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        tx = conn.transaction()
        await tx.start()
        started = time.perf_counter()
        for sql, params, many in sent:
            if many:
                await conn.executemany(sql, params)
            else:
                await conn.fetch(sql, *params)
        seconds = time.perf_counter() - started
        await tx.rollback()
    finally:
        await conn.close()
    return seconds


async def main(lines: int, queue: int, runs: int) -> None:
    url = bench_database_url("creneau_bench_cpam_import")
    territory_id = await prepare(url, queue)
    data = cpam_list(lines, queue)
    print(f"{lines} lines ({len(data) / 1000:.0f} kB) into a queue of {queue} requests, "
          f"median of {runs} runs, each rolled back")  # fmt: skip
    results: dict[str, tuple[float, int, tuple[int, int, int]]] = {}
    raw: list[float] = []
    for name, batch_lines in (("line by line", None), ("batches of 500", 500)):
        times, counts, statements = [], set(), set()
        for _ in range(runs):
            seconds, sent, outcome = await run_import(url, territory_id, data, batch_lines)
            times.append(seconds)
            counts.add(outcome)
            statements.add(len(sent))
            if batch_lines is not None:
                raw.append(await replay(url, sent))
        assert len(counts) == 1 and len(statements) == 1, (counts, statements)
        results[name] = (statistics.median(times), statements.pop(), counts.pop())
    print(f"{'':16} {'seconds':>8} {'lines/s':>8} {'statements':>10}   created merged rejected")
    for name, (seconds, sent_count, (created, merged, rejected)) in results.items():
        print(f"{name:16} {seconds:8.3f} {lines / seconds:8.0f} {sent_count:10d}   "
              f"{created:7d} {merged:6d} {rejected:8d}")  # fmt: skip
    raw_seconds = statistics.median(raw)
    sent_batches = results["batches of 500"][1]
    print(f"{'raw (replayed)':16} {raw_seconds:8.3f} {lines / raw_seconds:8.0f} "
          f"{sent_batches:10d}   the batch import's own statements on asyncpg")  # fmt: skip
    lines_s, batch_s = results["line by line"][0], results["batches of 500"][0]
    print(
        f"batches / line by line: {batch_s / lines_s:.2f} of the time "
        f"({lines_s / batch_s:.1f}× faster); raw / batches: {raw_seconds / batch_s:.2f}"
    )
    same = results["line by line"][2] == results["batches of 500"][2]
    print("same created / merged / rejected:", "yes" if same else "NO")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=5000)
    parser.add_argument("--queue", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.lines, args.queue, args.runs))
