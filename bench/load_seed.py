"""bench.load's department: 4 CPTS territories, 100 practices, 300 GPs with two rules each,
14 days of slots and a year of activity history, seeded straight into its database; the keys
of its regulators, dashboards and SAS platform; the bookings reset between steps."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

import asyncpg

from app.security import digest
from bench.common import (
    copy_directory,
)

PARIS = ZoneInfo("Europe/Paris")
RPPS_OID = "urn:oid:1.2.250.1.71.4.2.1"


@dataclass
class Gp:
    id: uuid.UUID
    rpps: str
    territory: int
    practice_key: str


@dataclass
class Department:
    territories: list[uuid.UUID]
    centres: list[tuple[float, float]]
    gps: list[Gp]
    regulator_keys: list[str]
    dashboard_keys: list[str]
    platform_key: str


async def _key(conn: asyncpg.Connection, role: str, **scope: uuid.UUID) -> str:
    key = f"crn_bench_{uuid.uuid4().hex}"
    columns = ", ".join(["id", "name", "role", "prefix", "digest", *scope])
    values = ", ".join(f"${i}" for i in range(1, 6 + len(scope)))
    await conn.execute(
        f"INSERT INTO api_key ({columns}) VALUES ({values})",
        uuid.uuid4(),
        f"bench {role}",
        role,
        "crn_bench",
        digest(key),
        *scope.values(),
    )
    return key


async def seed_department(
    dsn: str,
    *,
    territories: int = 4,
    practices: int = 25,
    gps_per_practice: int = 3,
    regulators: int = 8,
    history_days: int = 365,
    seed: int = 15,
) -> Department:
    """One department: its CPTS territories, practices, GPs with an 8-10 weekday rule and a
    17-19 Monday-Saturday rule (20-minute SAS slots), one SAS serving every territory with
    `regulators` keys, a practice key per practice, a dashboard key per territory, a SAS
    platform key, and `history_days` of past activity for the indicators."""
    rng = random.Random(seed)
    conn = await asyncpg.connect(dsn)
    today = date.today()
    dept = Department([], [], [], [], [], "")
    rows_t, rows_p, rows_g, rules = [], [], [], []
    for t in range(territories):
        tid = uuid.uuid4()
        # A department about 100 km across, one CPTS a quadrant.
        lat0, lon0 = 44.9 + 0.45 * (t % 2), 2.4 + 0.6 * (t // 2)
        dept.territories.append(tid)
        dept.centres.append((lat0, lon0))
        rows_t.append((tid, f"CPTS charge {t}", "Europe/Paris", "15"))
        for p in range(practices):
            pid = uuid.uuid4()
            rows_p.append(
                (pid, tid, f"MSP {t}-{p}", "1 place de la Mairie", "15014",
                 lat0 + rng.uniform(-0.22, 0.22), lon0 + rng.uniform(-0.3, 0.3))
            )  # fmt: skip
            for _ in range(gps_per_practice):
                gid = uuid.uuid4()
                rpps = f"{10_000_000_000 + len(rows_g):011d}"
                rows_g.append((gid, pid, tid, rpps, f"Nom{len(rows_g)}", "Prénom"))
                dept.gps.append(Gp(gid, rpps, t, ""))
                rules.append((uuid.uuid4(), gid, "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
                              dtime(8), dtime(10), 20, "cabinet", "sas", today))  # fmt: skip
                rules.append((uuid.uuid4(), gid, "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA",
                              dtime(17), dtime(19), 20,
                              rng.choice(["cabinet", "visite", "teleconsultation"]),
                              "sas", today))  # fmt: skip
    await copy_directory(conn, rows_t, rows_p, rows_g, rules)
    practice_keys = {}
    for pid, *_ in rows_p:
        practice_keys[pid] = await _key(conn, "practice", practice_id=pid)
    for gp, row in zip(dept.gps, rows_g, strict=True):
        gp.practice_key = practice_keys[row[1]]
    sas = uuid.uuid4()
    await conn.execute(
        "INSERT INTO regulator (id, name, department) VALUES ($1, 'SAS 15', '15')", sas
    )
    await conn.executemany(
        "INSERT INTO regulator_territory (regulator_id, territory_id) VALUES ($1, $2)",
        [(sas, t) for t in dept.territories],
    )
    for _ in range(regulators):
        dept.regulator_keys.append(await _key(conn, "regulator", regulator_id=sas))
    for tid in dept.territories:
        dept.dashboard_keys.append(await _key(conn, "dashboard", territory_id=tid))
    dept.platform_key = await _key(conn, "sas_platform")
    await _seed_history(conn, dept, history_days, rng)
    await conn.close()
    return dept


async def _seed_history(
    conn: asyncpg.Connection, dept: Department, days: int, rng: random.Random
) -> None:
    """Past activity, shaped as the service writes it: each GP's daily SNP offer, about
    20 SAS bookings a territory a day and what became of them, MT registrations."""
    rows = []
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for back in range(days, 0, -1):
        day = start - timedelta(days=back)
        if day.weekday() == 6:
            continue
        for gp in dept.gps:
            data = {"modality": "cabinet", "visibility": "sas",
                    "days": {day.date().isoformat(): {"slots": 12, "minutes": 240}}}  # fmt: skip
            rows.append((day - timedelta(days=14), "slots.offered", dept.territories[gp.territory],
                         gp.id, json.dumps(data)))  # fmt: skip
        for tid in dept.territories:
            for _ in range(20):
                lead = rng.randint(30, 2800)
                data = {"modality": rng.choice(["cabinet", "visite", "teleconsultation"]),
                        "lead_minutes": lead,
                        "start": (day + timedelta(minutes=lead)).isoformat()}  # fmt: skip
                rows.append((day + timedelta(minutes=rng.randint(420, 1260)), "booking.booked",
                             tid, rng.choice(dept.gps).id, json.dumps(data)))  # fmt: skip
            for type_, n in (("booking.honored", 17), ("booking.no_show", 1),
                             ("booking.cancelled", 1), ("mt.registered", 2)):  # fmt: skip
                for _ in range(n):
                    data = {"was": "booked", "priority": rng.randint(0, 3)}
                    at = day + timedelta(minutes=rng.randint(420, 1260))
                    rows.append((at, type_, tid, None, json.dumps(data)))
    await conn.copy_records_to_table(
        "activity_event",
        records=rows,
        columns=["at", "type", "territory_id", "practitioner_id", "data"],
    )
    print(f"history: {len(rows):,} activity events over {days} days")


async def reset_bookings(dsn: str) -> None:
    """Every step starts from the same supply: no booking, no held or booked slot."""
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "DELETE FROM booking; DELETE FROM idempotency_record; DELETE FROM outbox_message; "
        "UPDATE slot SET status = 'free', hold_expires_at = NULL "
        "WHERE status IN ('held', 'booked')"
    )
    await conn.close()
