"""bench.load's mix of requests (a regulator's search and booking, a practice's publication
and agenda, a dashboard, the SAS platform's FHIR search) with the client-side state that links
them, and the statistics of a step."""

from __future__ import annotations

import itertools
import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from urllib.parse import quote

from bench.common import (
    LoadClient,
    LoadResult,
    load_errors,
)
from bench.load_seed import PARIS, RPPS_OID, Department

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
