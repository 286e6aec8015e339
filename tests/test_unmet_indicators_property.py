"""Property: after any history of SAS bookings (booked, cancelled, surnuméraires, outcomes),
declared unmet requests, empty searches, calls for slots and slots published (by the GPs, or
by the nightly horizon job), the unmet section of the indicators has no negative figure and
no share above 1; placed + unmet = SAS requests; every figure equals a recount from the
history itself; and the weekly figures of the month add up to the month's."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from app.activity import indicators
from app.activity.models import ActivityEvent
from app.activity.unmet_figures import REASONS
from tests.test_indicators_property import GPS, PARIS, History

COMMUNES = ("15014", "15100", "15187")
OPS = ("offer", "book", "cancel", "outcome", "overbook", "unmet", "empty", "call", "publish")


class UnmetHistory(History):
    """The booking history of the indicators' property test, with the unmet demand and the
    calls for slots, and their recount."""

    def __init__(self, territory_id: uuid.UUID) -> None:
        super().__init__(territory_id)
        self.unmet: list[tuple[datetime, str, str]] = []
        self.empty = 0
        self.calls: list[tuple[datetime, uuid.UUID]] = []
        self.published: list[tuple[datetime, uuid.UUID, str, int]] = []

    def act(self, op: str, i: int, j: int) -> None:
        gp = GPS[i % len(GPS)]
        if op == "unmet":
            reason, commune = REASONS[i % len(REASONS)], COMMUNES[j % len(COMMUNES)]
            self.event("unmet.recorded", subject=uuid.uuid4(), reason=reason,
                       commune_insee=commune, modality=None)  # fmt: skip
            self.unmet.append((self.clock, reason, commune))
        elif op == "empty":
            self.event("unmet.empty_search", subject=uuid.uuid4(),
                       commune_insee=COMMUNES[j % len(COMMUNES)])  # fmt: skip
            self.empty += 1
        elif op == "call":
            self.event("slots.call_sent", gp, uuid.uuid4(), free_slots=0, floor=3)
            self.calls.append((self.clock, gp))
        elif op == "publish":  # a one-off slot or a rule: an event with a subject
            visibility, slots = ("sas", "public", "cpts")[j % 3], 1 + i % 4
            day = (self.clock + timedelta(days=1)).date().isoformat()
            days = {day: {"slots": slots, "minutes": 20}}
            self.event("slots.offered", gp, uuid.uuid4(), modality="cabinet",
                       visibility=visibility, days=days)  # fmt: skip
            self.published.append((self.clock, gp, visibility, slots))
        else:
            self.apply(op, i, j)

    def recount(self) -> dict[str, Any]:
        base = self.expected()
        placed = base["slots_booked_by_sas"] + base["overbooked"]
        produced = sum(
            slots
            for at, gp in self.calls
            for when, publisher, visibility, slots in self.published
            if publisher == gp and visibility != "cpts" and at < when < at + timedelta(hours=24)
        )
        hours = Counter(f"{at.astimezone(PARIS).hour:02d}" for at, _, _ in self.unmet)
        return {
            "sas_requests": placed + len(self.unmet),
            "placed": placed,
            "unmet": len(self.unmet),
            "placed_within_48h": base["booked_within_48h"],
            "empty_searches": self.empty,
            "unmet_by_reason": {r: sum(1 for u in self.unmet if u[1] == r) for r in REASONS},
            "unmet_by_hour": {f"{h:02d}": hours[f"{h:02d}"] for h in range(24)},
            "unmet_by_commune": dict(sorted(Counter(u[2] for u in self.unmet).items())),
            "calls_sent": len(self.calls),
            "slots_from_calls": produced,
        }


def _add(total: dict[str, Any], figures: dict[str, Any]) -> None:
    for key, value in figures.items():
        if isinstance(value, dict):
            _add(total.setdefault(key, {}), value)
        elif isinstance(value, int) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(OPS), st.integers(0, 63), st.integers(0, 63)),
        min_size=3,
        max_size=80,
    )
)
@example(ops=[("call", 0, 0), ("publish", 0, 2), ("publish", 1, 0), ("publish", 0, 0)])
async def test_unmet_figures_add_up_and_equal_a_recount(session, territory, ops):
    t = uuid.UUID(territory.id)
    history = UnmetHistory(t)
    for op, i, j in ops:
        history.act(op, i, j)
    nested = await session.begin_nested()
    try:
        if history.events:
            await session.execute(insert(ActivityEvent).values(history.events))

        async def compute(granularity: indicators.Granularity) -> list[indicators.Figures]:
            return await indicators.compute(
                session, t, "Europe/Paris", granularity, date(2027, 3, 1), date(2027, 4, 1),
                now=datetime(2027, 4, 1, tzinfo=PARIS),
            )  # fmt: skip

        (march,) = await compute("month")
        u = march.unmet
        expected = history.recount()
        assert {k: u[k] for k in expected} == expected
        assert u["placed"] + u["unmet"] == u["sas_requests"]
        for name in ("share_placed", "share_placed_within_48h"):
            assert u[name] is None or 0 <= u[name] <= 1, name
        weeks: dict[str, Any] = {}
        for week in await compute("week"):
            assert week.unmet["placed"] + week.unmet["unmet"] == week.unmet["sas_requests"]
            _add(weeks, week.unmet)
        month = {k: v for k, v in u.items() if not k.startswith("share")}
        weeks["unmet_by_commune"] = {c: n for c, n in weeks["unmet_by_commune"].items() if n}
        assert weeks == month

        def walk(value: Any) -> list[float]:
            if isinstance(value, dict):
                return [x for inner in value.values() for x in walk(inner)]
            return [value] if isinstance(value, int | float) else []

        assert all(x >= 0 for x in walk(u))
    finally:
        await nested.rollback()
