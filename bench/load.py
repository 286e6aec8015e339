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
import itertools
import json
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from urllib.parse import quote
from zoneinfo import ZoneInfo

import asyncpg
import psutil

from app.security import digest
from bench.common import (
    LoadClient,
    LoadResult,
    Server,
    bench_database_url,
    consistency,
    copy_directory,
    fresh_database,
    load_errors,
)
from bench.search import materialize

PARIS = ZoneInfo("Europe/Paris")
RPPS_OID = "urn:oid:1.2.250.1.71.4.2.1"
PATIENT = {
    "family_name": "Charge",
    "given_name": "Patient",
    "birth_date": "1950-03-04",
    "phone": "+33612345678",
}

# The mix, in percent of requests. A department's dashboards are read a few times a day,
# not tens of times a second: 2 % here (about 6 a second at 300 req/s) already overstates
# them; `--mix dashboard=10,search=54` reruns with more.
MIX = {
    "search": 62,  # regulator: GET /v1/slots?near=…&radius_km=30 (48 h)
    "book": 10,  # regulator: POST /v1/bookings on a slot a search returned
    "booking_read": 4,  # regulator: GET /v1/bookings/{id}
    "cancel": 2,  # regulator: POST /v1/bookings/{id}/cancel
    "publish_slot": 5,  # practice: POST /v1/practitioners/{id}/slots (one-off slot)
    "publish_rule": 1,  # practice: POST /v1/practitioners/{id}/availability-rules
    "agenda": 8,  # practice: GET /v1/practitioners/{id}/slots (its agenda, 7 days)
    "dashboard": 2,  # dashboard: GET /v1/indicators, 13 months by month
    "fhir": 6,  # SAS platform: GET /fhir/Slot, the guide's search, 5 GPs over 48 h
}
KINDS = list(MIX)
EXPECTED = {
    "search": {200},
    "book": {201},
    "booking_read": {200},
    "cancel": {200},
    "publish_slot": {201},
    "publish_rule": {201},
    "agenda": {200},
    "dashboard": {200},
    "fhir": {200},
}
CONFLICTS = {"book": {409}}  # another regulator took the slot first


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


@dataclass
class Stats:
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    conflicts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    # Requests abandoned unanswered (open loop): in the latencies, as a lower bound, and in
    # the errors, but not in the requests served.
    abandoned: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, ms: float, outcome: str) -> None:
        self.latencies[kind].append(ms)
        if outcome == "conflict":
            self.conflicts[kind] += 1
        elif outcome != "ok":
            self.errors[f"{kind} {outcome}"] += 1

    def result(self, kind: str | None = None) -> LoadResult:
        data = (
            self.latencies[kind]
            if kind
            else [v for values in self.latencies.values() for v in values]
        )
        errors = sum(n for k, n in self.errors.items() if kind is None or k.startswith(f"{kind} "))
        unanswered = self.abandoned[kind] if kind else sum(self.abandoned.values())
        return LoadResult(0, len(data) - unanswered, errors, self.seconds, data)


class Mix:
    """The requests of the mix, with the client-side state that links them: slots seen in
    searches are booked, bookings made are read and cancelled."""

    # Shared by every run of the process: published slots and rules are never reset, so
    # their times must never repeat.
    slot_counter = itertools.count()
    rule_counter = itertools.count()

    def __init__(
        self, http: LoadClient, dept: Department, weights: dict[str, int] | None = None
    ) -> None:
        self.http, self.dept = http, dept
        self.weights = [(weights or MIX)[k] for k in KINDS]
        self.recent_slots: list[str] = []
        self.booked: list[str] = []
        # Where the patients call from: a grid over each CPTS.
        self.points = [(la + dla, lo + dlo) for la, lo in dept.centres
                       for dla in (-0.15, 0.0, 0.15) for dlo in (-0.2, 0.0, 0.2)]  # fmt: skip
        groups: dict[int, list[str]] = defaultdict(list)
        for gp in dept.gps:
            groups[gp.territory].append(gp.rpps)
        self.rpps_groups = [g[i : i + 5] for g in groups.values() for i in range(0, len(g), 5)]
        month = date.today().replace(day=1)
        self.indicator_params = {
            "from": month.replace(year=month.year - 1).isoformat(),
            "to": (month + timedelta(days=32)).replace(day=1).isoformat(),
            "granularity": "month",
        }

    def reset(self) -> None:
        self.recent_slots.clear()
        self.booked.clear()

    @staticmethod
    def _auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    async def call(self, kind: str, rng: random.Random) -> tuple[str, str]:
        """Send one request of `kind` (a search when there is nothing yet to book, read or
        cancel); returns the kind sent and "ok", "conflict", or what went wrong."""
        if (kind == "book" and not self.recent_slots) or (
            kind in ("booking_read", "cancel") and not self.booked
        ):
            kind = "search"
        try:
            status = await getattr(self, kind)(rng)
        except load_errors() as exc:
            return kind, type(exc).__name__
        if status in EXPECTED[kind]:
            return kind, "ok"
        if status in CONFLICTS.get(kind, ()):
            return kind, "conflict"
        return kind, f"HTTP {status}"

    def _regulator(self, rng: random.Random) -> dict[str, str]:
        return self._auth(rng.choice(self.dept.regulator_keys))

    async def search(self, rng: random.Random) -> int:
        lat, lon = rng.choice(self.points)
        r = await self.http.get(
            "/v1/slots",
            params={"near": f"{lat:.4f},{lon:.4f}", "radius_km": 30},
            headers=self._regulator(rng),
        )
        if r.status_code == 200:
            items = r.json()["items"]
            # The regulator picks among the first few results, as on the phone.
            self.recent_slots.extend(i["id"] for i in items[:10])
            del self.recent_slots[:-300]
        return r.status_code

    async def book(self, rng: random.Random) -> int:
        slot = self.recent_slots.pop(rng.randrange(len(self.recent_slots)))
        r = await self.http.post(
            "/v1/bookings",
            json={"slot_id": slot, "patient": PATIENT, "sas_case_ref": "SAS15-CHARGE"},
            headers={**self._regulator(rng), "Idempotency-Key": uuid.uuid4().hex},
        )
        if r.status_code == 201:
            self.booked.append(r.json()["id"])
        return r.status_code

    async def booking_read(self, rng: random.Random) -> int:
        booking = rng.choice(self.booked)
        r = await self.http.get(f"/v1/bookings/{booking}", headers=self._regulator(rng))
        return r.status_code

    async def cancel(self, rng: random.Random) -> int:
        booking = self.booked.pop(rng.randrange(len(self.booked)))
        r = await self.http.post(
            f"/v1/bookings/{booking}/cancel",
            json={"reason": "patient rappelé par son médecin"},
            headers=self._regulator(rng),
        )
        return r.status_code

    async def publish_slot(self, rng: random.Random) -> int:
        """A one-off 10-minute slot between 12:00 and 14:00, on a day and at a time no other
        request of this run uses (so that a 409 here is a real error)."""
        n = next(self.slot_counter)
        gp = self.dept.gps[n % len(self.dept.gps)]
        j = n // len(self.dept.gps)
        day = date.today() + timedelta(days=1 + (j // 12) % 13)
        start = datetime.combine(day, dtime(12), PARIS) + timedelta(minutes=10 * (j % 12))
        r = await self.http.post(
            f"/v1/practitioners/{gp.id}/slots",
            json={
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=10)).isoformat(),
                "modality": "cabinet",
                "visibility": "sas",
            },
            headers=self._auth(gp.practice_key),
        )
        return r.status_code

    def rule_day_and_hour(self, n: int) -> tuple[date, int]:
        """The day and starting hour of the `n`-th rule: unique per GP and day, at 20:00."""
        return date.today() + timedelta(days=1 + (n // len(self.dept.gps)) % 13), 20

    async def publish_rule(self, rng: random.Random) -> int:
        """An evening teleconsultation rule for one day and one hour (three 20-minute slots)."""
        n = next(self.rule_counter)
        gp = self.dept.gps[n % len(self.dept.gps)]
        day, hour = self.rule_day_and_hour(n)
        r = await self.http.post(
            f"/v1/practitioners/{gp.id}/availability-rules",
            json={
                "rrule": "FREQ=DAILY",
                "start_time": f"{hour}:00",
                "end_time": f"{(hour + 1) % 24:02d}:00",
                "slot_minutes": 20,
                "modality": "teleconsultation",
                "visibility": "sas",
                "valid_from": day.isoformat(),
                "valid_until": day.isoformat(),
            },
            headers=self._auth(gp.practice_key),
        )
        return r.status_code

    async def agenda(self, rng: random.Random) -> int:
        gp = rng.choice(self.dept.gps)
        r = await self.http.get(
            f"/v1/practitioners/{gp.id}/slots", headers=self._auth(gp.practice_key)
        )
        return r.status_code

    async def dashboard(self, rng: random.Random) -> int:
        r = await self.http.get(
            "/v1/indicators",
            params=self.indicator_params,
            headers=self._auth(rng.choice(self.dept.dashboard_keys)),
        )
        return r.status_code

    async def fhir(self, rng: random.Random) -> int:
        rpps = rng.choice(self.rpps_groups)
        start = datetime.now(UTC)
        ids = ",".join(f"{RPPS_OID}|8{r}" for r in rpps)
        url = (
            "/fhir/Slot?_include=Slot:schedule&_include:iterate=Schedule:actor"
            "&_include=Slot:service-type-reference&_include:iterate=HealthcareService:organization"
            f"&start=ge{quote(start.isoformat(timespec='seconds'))}"
            f"&start=le{quote((start + timedelta(hours=48)).isoformat(timespec='seconds'))}"
            f"&schedule.actor:Practitioner.identifier={quote(ids, safe='|,:')}&status=free"
        )
        r = await self.http.get(url, headers=self._auth(self.dept.platform_key))
        return r.status_code


class CpuMeter:
    """CPU seconds used by the server's processes, by this database's PostgreSQL backends,
    by this load generator, and by the whole machine, between two readings."""

    def __init__(self, server: Server, database: str) -> None:
        self.server, self.database = server, database
        self.me = psutil.Process()

    def _backends(self) -> list[psutil.Process]:
        procs = []
        for p in psutil.process_iter(["name", "cmdline"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if p.info["name"] == "postgres" and f" {self.database} " in cmd:
                procs.append(p)
        return procs

    def read(self) -> dict[str, dict[int, float]]:
        """Cumulative CPU seconds per process id, by group, and the machine's busy seconds."""

        def used(procs: list[psutil.Process]) -> dict[int, float]:
            out = {}
            for p in procs:
                try:
                    t = p.cpu_times()
                    out[p.pid] = t.user + t.system
                except psutil.NoSuchProcess:
                    continue
            return out

        parent = psutil.Process(self.server.proc.pid)
        machine = psutil.cpu_times()
        return {
            "server": used([parent, *parent.children(recursive=True)]),
            "postgres": used(self._backends()),
            "driver": used([self.me]),
            "machine": {0: sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)},
            "wall": {0: time.perf_counter()},
        }

    @staticmethod
    def seconds(
        before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]
    ) -> dict[str, float]:
        """CPU seconds of each group between two readings (processes that started in
        between count from zero; those that ended in between are missed)."""
        return {
            group: sum(v - before[group].get(pid, 0.0) for pid, v in after[group].items())
            for group in after
        }

    @staticmethod
    def line(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> str:
        used = CpuMeter.seconds(before, after)
        share = {k: v / used["wall"] * 100 for k, v in used.items()}
        others = share["machine"] - share["server"] - share["postgres"] - share["driver"]
        return (
            f"CPU (% of one core): server {share['server']:.0f}, its PostgreSQL backends "
            f"{share['postgres']:.0f}, load generator {share['driver']:.0f}, other programs "
            f"{max(others, 0):.0f}; machine busy {share['machine']:.0f} of "
            f"{psutil.cpu_count() * 100}"
        )


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
