"""Property: after any history of events (book, cancel, rebook, hold, confirm, expire, outcome,
surnuméraire, absence, MT registration, attachment, withdrawal, capacity change, GP deleted,
birthday crossing 70), written in statements of random sizes, the roll-ups the trigger kept
equal a rebuild from the log, the figures equal a recount from the history itself, no figure
is negative and no rate is above 1."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, text

from app.activity import indicators
from app.activity.models import ActivityEvent
from app.activity.service import rebuild_rollups

PARIS = ZoneInfo("Europe/Paris")
START = datetime(2027, 3, 1, 8, 0, tzinfo=PARIS)
GPS = [uuid.UUID(int=i + 1) for i in range(3)]

OPS = (
    "offer", "withdraw", "book", "hold", "confirm", "expire", "let_go", "cancel", "outcome",
    "overbook", "register", "attach", "attach_at_70", "leave_queue", "detach", "capacity",
    "delete_gp",
)  # fmt: skip


# Operations that build state drawn more often, so that long, tangled histories are common.
WEIGHTED = (*OPS, "offer", "book", "cancel", "register", "register", "attach", "capacity")


@dataclass
class Slot:
    gp: uuid.UUID
    start: datetime
    audience: str  # visibility: sas, public or cpts
    offered: bool = True
    booking: uuid.UUID | None = None  # the standing or held booking


@dataclass
class Booking:
    slot: Slot | None
    start: datetime
    status: str
    lead: int = 0
    was_booked: bool = False


@dataclass
class Request:
    priority: int
    criteria: tuple[str, ...]
    state: str = "waiting"
    gp: uuid.UUID | None = None


@dataclass
class History:
    """The world the events describe, to recount each figure without the log."""

    territory_id: uuid.UUID
    clock: datetime = START
    events: list[dict[str, Any]] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)
    bookings: dict[uuid.UUID, Booking] = field(default_factory=dict)
    requests: dict[uuid.UUID, Request] = field(default_factory=dict)
    capacity: dict[uuid.UUID, int] = field(default_factory=dict)
    deleted: set[uuid.UUID] = field(default_factory=set)

    def event(self, type_: str, gp=None, subject=None, **data: Any) -> None:
        self.clock += timedelta(minutes=17)
        self.events.append(
            {"at": self.clock, "type": type_, "territory_id": self.territory_id,
             "practitioner_id": gp, "subject_id": subject, "data": data}
        )  # fmt: skip

    def offer(self, gp: uuid.UUID, start: datetime, audience: str, sign: str) -> None:
        self.event(
            sign,
            gp,
            modality="cabinet",
            visibility=audience,
            days={start.date().isoformat(): {"slots": 1, "minutes": 20}},
        )

    def booking_event(self, type_: str, b_id: uuid.UUID, b: Booking, gp, **data: Any) -> None:
        self.event(
            type_, gp, b_id, modality="cabinet", start=b.start.isoformat(),
            overbooked=b.slot is None, **data,
        )  # fmt: skip

    def apply(self, op: str, i: int, j: int) -> None:
        gp = GPS[i % len(GPS)]
        free = [s for s in self.slots if s.offered and s.booking is None]
        bookable = [s for s in free if s.audience != "cpts" and s.start > self.clock]
        held = [(k, b) for k, b in self.bookings.items() if b.status == "held"]
        booked = [(k, b) for k, b in self.bookings.items() if b.status == "booked"]
        waiting = [(k, r) for k, r in self.requests.items() if r.state == "waiting"]
        attached = [(k, r) for k, r in self.requests.items() if r.state == "attached"]
        if op == "offer":
            start = datetime(2027, 3, 2 + j % 27, 10 + i % 8, tzinfo=PARIS)
            slot = Slot(gp, start, ("sas", "public", "cpts")[j % 3])
            self.slots.append(slot)
            self.offer(gp, start, slot.audience, "slots.offered")
        elif op == "withdraw" and free:  # an absence: free (or held, below) slots withdrawn
            slot = free[j % len(free)]
            slot.offered = False
            self.offer(slot.gp, slot.start, slot.audience, "slots.withdrawn")
        elif op in ("book", "hold") and bookable:
            slot = bookable[j % len(bookable)]
            b_id = uuid.uuid4()
            b = Booking(slot, slot.start, "held" if op == "hold" else "booked")
            slot.booking = b_id
            self.bookings[b_id] = b
            if op == "hold":
                self.booking_event("booking.held", b_id, b, slot.gp)
            else:
                self._booked(b_id, b, slot.gp)
        elif op == "confirm" and held:
            b_id, b = held[j % len(held)]
            b.status = "booked"
            assert b.slot is not None
            self._booked(b_id, b, b.slot.gp)
        elif op in ("expire", "let_go") and held:
            b_id, b = held[j % len(held)]
            assert b.slot is not None
            b.slot.booking = None
            if op == "expire":
                b.status = "expired"
                self.booking_event("hold.expired", b_id, b, b.slot.gp)
            else:
                b.status = "cancelled"
                self.booking_event("booking.cancelled", b_id, b, b.slot.gp, was="held")
        elif op == "cancel" and booked:
            b_id, b = booked[j % len(booked)]
            b.status = "cancelled"
            if b.slot is not None:
                b.slot.booking = None
            self.booking_event("booking.cancelled", b_id, b, gp, was="booked")
        elif op == "outcome" and booked:
            b_id, b = booked[j % len(booked)]
            b.status = ("honored", "no_show")[i % 2]
            self.booking_event(f"booking.{b.status}", b_id, b, gp)
        elif op == "overbook":
            start = self.clock + timedelta(hours=1 + j % 60)
            if start.month == 3:
                b_id = uuid.uuid4()
                b = self.bookings[b_id] = Booking(None, start, "booked")
                self._booked(b_id, b, gp, type_="booking.overbooked")
        elif op == "register":
            criteria = tuple(c for k, c in enumerate(indicators.CRITERIA) if (i >> k) & 1)
            r_id = uuid.uuid4()
            self.requests[r_id] = Request(len(criteria), criteria)
            self.event("mt.registered", None, r_id, priority=len(criteria),
                       **{c: c in criteria for c in indicators.CRITERIA})  # fmt: skip
        elif op in ("attach", "attach_at_70") and waiting and gp not in self.deleted:
            r_id, r = waiting[j % len(waiting)]
            r.state, r.gp = "attached", gp
            # Turned 70 while waiting: the event says one more criterion than at registration.
            turned = op == "attach_at_70" and "aged_70" not in r.criteria
            self.event("mt.attached", gp, r_id, priority=r.priority + turned,
                       aged_70=turned or "aged_70" in r.criteria, waiting_days=1.0)  # fmt: skip
        elif op == "leave_queue" and waiting:
            r_id, r = waiting[j % len(waiting)]
            r.state = "withdrawn"
            self.event("mt.withdrawn", None, r_id, priority=r.priority, was="waiting")
        elif op == "detach" and attached:
            r_id, r = attached[j % len(attached)]
            r.state = "withdrawn"
            self.event("mt.withdrawn", None, r_id, priority=r.priority, was="attached")
        elif op == "capacity" and gp not in self.deleted:
            self.capacity[gp] = j % 4
            self.event("mt.capacity_set", gp, capacity=j % 4)
        elif op == "delete_gp" and gp not in self.deleted and not self._has_patients(gp):
            # (The service refuses to delete a GP who still has patients.)
            self.deleted.add(gp)
            self.capacity.pop(gp, None)
            self.event("practitioner.deleted", gp)

    def _has_patients(self, gp: uuid.UUID) -> bool:
        return any(r.gp == gp and r.state == "attached" for r in self.requests.values())

    def _booked(self, b_id, b: Booking, gp, type_: str = "booking.booked") -> None:
        b.was_booked = True
        b.lead = int((b.start - self.clock - timedelta(minutes=17)).total_seconds() // 60)
        self.booking_event(type_, b_id, b, gp, lead_minutes=b.lead)

    def expected(self) -> dict[str, Any]:
        standing = ("booked", "honored", "no_show")
        offered = [s for s in self.slots if s.offered]
        on_slots = [b for b in self.bookings.values() if b.slot is not None]
        extras = [b for b in self.bookings.values() if b.slot is None]
        seen = [b for b in self.bookings.values() if b.status in ("booked", "honored")]
        attached_to: dict[uuid.UUID, int] = {}
        for r in self.requests.values():
            if r.state == "attached" and r.gp is not None:
                attached_to[r.gp] = attached_to.get(r.gp, 0) + 1
        queue = [r for r in self.requests.values() if r.state == "waiting"]
        return {
            "slots_offered": len(offered),
            "slots_offered_sas": sum(1 for s in offered if s.audience != "cpts"),
            "slots_taken": sum(1 for b in on_slots if b.status in standing),
            "slots_booked_by_sas": sum(1 for b in on_slots if b.status in standing),
            "overbooked": sum(1 for b in extras if b.status in standing),
            "cancellations": sum(
                1 for b in self.bookings.values() if b.status == "cancelled" and b.was_booked
            ),
            "booked_within_48h": sum(1 for b in seen if b.lead <= 2880),
            "honored": sum(1 for b in self.bookings.values() if b.status == "honored"),
            "no_show": sum(1 for b in self.bookings.values() if b.status == "no_show"),
            "registered": len(self.requests),
            "waiting_at_end": len(queue),
            "waiting_at_end_by_priority": {
                str(k): sum(1 for r in queue if r.priority == k) for k in range(4)
            },
            "remaining_capacity_at_end": sum(
                max(0, cap - attached_to.get(gp, 0)) for gp, cap in self.capacity.items()
            ),
        }


def _walk(value: Any, path: str = ""):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _walk(inner, f"{path}.{key}")
    elif isinstance(value, int | float):
        yield path, value


# booking_day summed over its shards, rows that sum to nothing left out.
BOOKING_DAYS = """
    SELECT day, kind, modality, sum(booked), sum(overbooked), sum(within_24h), sum(within_48h),
           sum(standing), sum(honored), sum(no_show), sum(cancelled)
    FROM booking_day WHERE territory_id = :t GROUP BY 1, 2, 3
    HAVING sum(booked) <> 0 OR sum(overbooked) <> 0 OR sum(within_24h) <> 0
        OR sum(within_48h) <> 0 OR sum(standing) <> 0 OR sum(honored) <> 0
        OR sum(no_show) <> 0 OR sum(cancelled) <> 0
    ORDER BY 1, 2, 3
"""
ROLLUPS = (
    "SELECT * FROM offer_period WHERE territory_id = :t "
    "ORDER BY granularity, period_start, practitioner_id, audience",
    "SELECT * FROM booking_state WHERE territory_id = :t ORDER BY booking_id",
    BOOKING_DAYS,
)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(WEIGHTED), st.integers(0, 63), st.integers(0, 63), st.booleans()),
        min_size=5,
        max_size=60,
    )
)
async def test_rollups_equal_a_rebuild_and_figures_a_recount(session, territory, ops):
    t = uuid.UUID(territory.id)
    history = History(t)
    for gp in GPS:  # every GP starts with one MT place
        history.apply("capacity", GPS.index(gp), 1)
    statements: list[list[dict[str, Any]]] = [history.events[:]]
    for op, i, j, new_statement in ops:
        before = len(history.events)
        history.apply(op, i, j)
        for event in history.events[before:]:
            if new_statement or not statements:
                statements.append([])
            statements[-1].append(event)
    nested = await session.begin_nested()
    try:
        for statement in statements:
            await session.execute(insert(ActivityEvent).values(statement))
        params = {"t": t}
        kept = [(await session.execute(text(q), params)).all() for q in ROLLUPS]
        await rebuild_rollups(session)
        assert [(await session.execute(text(q), params)).all() for q in ROLLUPS] == kept

        (march,) = await indicators.compute(
            session, t, "Europe/Paris", "month", date(2027, 3, 1), date(2027, 4, 1),
            now=datetime(2027, 4, 1, tzinfo=PARIS), population=1000,
        )  # fmt: skip
        figures = {**march.snp, **march.mt}
        expected = history.expected()
        assert {k: figures[k] for k in expected} == expected
        offered, taken = figures["slots_offered"], figures["slots_taken"]
        assert figures["fill_rate"] == (
            round(min(taken, offered) / offered, 4) if offered else None
        )
        for path, value in _walk({"snp": march.snp, "mt": march.mt}):
            assert value >= 0, path
            if "rate" in path or "share" in path:
                assert value <= 1, path
    finally:
        await nested.rollback()
