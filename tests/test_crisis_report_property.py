"""Property: after any history of crises (ended or running), calls (opened at any delay, or
never), crisis slots (open or closed) and bookings on them (standing, with an outcome,
cancelled, cancelled and rebooked), the `crisis` section of the indicators has no negative
figure and no share outside [0, 1]; the weeks add up to the month; and over a month covering
the crises, the indicators equal the sum of the crises' reports."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.activity import indicators
from app.crisis.models import Crisis, CrisisCall
from app.crisis.report import crisis_report
from app.directory.models import Practitioner, Territory
from app.scheduling.booking_models import Booking
from app.scheduling.models import Slot

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2027, 4, 1, tzinfo=PARIS)
BOOKINGS = (None, "booked", "honored", "no_show", "cancelled", "rebooked")

calls_st = st.lists(st.one_of(st.none(), st.integers(0, 3000)), min_size=0, max_size=3)
slots_st = st.lists(
    st.tuples(
        st.integers(0, 2),  # GP
        st.integers(-1, 4),  # day after the crisis's start
        st.integers(0, 30),  # 20-minute step from 07:00
        st.booleans(),  # closed
        st.sampled_from(BOOKINGS),
    ),
    max_size=12,
)
crisis_st = st.tuples(
    st.integers(2, 20),  # day of March 2027
    st.integers(0, 23),  # hour
    st.integers(0, 300),  # declared, minutes after the start
    st.integers(0, 5),  # ended, days after the declaration
    calls_st,
    slots_st,
)


def _booking(slot: Slot, practice_id: uuid.UUID, status: str, at: datetime) -> Booking:
    return Booking(
        slot_id=slot.id,
        practitioner_id=slot.practitioner_id,
        practice_id=practice_id,
        territory_id=slot.territory_id,
        status=status,
        start=slot.start,
        end=slot.end,
        modality=slot.modality,
        booked_at=at,
        cancelled_at=at + timedelta(minutes=5) if status == "cancelled" else None,
        outcome_at=slot.end if status in ("honored", "no_show") else None,
    )


async def _history(
    session, territory_id, practice_id, crises_in
) -> tuple[list[Crisis], dict[str, int]]:
    """The crises, calls, slots and bookings in the database, and their recount by hand."""
    gps = []
    for n in range(3):
        gp = Practitioner(practice_id=practice_id, territory_id=territory_id,
                          rpps=f"{uuid.uuid4().int % 10**11:011d}", family_name=f"GP{n}",
                          given_name="Test")  # fmt: skip
        session.add(gp)
        gps.append(gp)
    await session.flush()
    crises, taken = [], set()
    expected = dict.fromkeys(("volunteers_called", "pledges_honoured", "opened_within_2h",
                              "opened_within_24h", "slots_opened", "slots_booked"), 0)  # fmt: skip
    for k, (day, hour, declared_after, ended_after, calls, slots) in enumerate(crises_in):
        started = datetime(2027, 3, day, hour, tzinfo=PARIS)
        declared = started + timedelta(minutes=declared_after)
        running = k == len(crises_in) - 1 and ended_after == 0
        crisis = Crisis(territory_id=territory_id, kind="heatwave", title=f"Crise {k}",
                        started_at=started, expected_end_at=started + timedelta(days=7),
                        declared_at=declared, communes=[],
                        ended_at=None if running
                        else declared + timedelta(days=ended_after))  # fmt: skip
        session.add(crisis)
        await session.flush()
        crises.append(crisis)
        for gp, opened in zip(gps, calls, strict=False):
            expected["volunteers_called"] += 1
            expected["pledges_honoured"] += opened is not None
            expected["opened_within_2h"] += opened is not None and opened < 120
            expected["opened_within_24h"] += opened is not None and opened < 24 * 60
            session.add(CrisisCall(crisis_id=crisis.id, practitioner_id=gp.id,
                                   practice_id=practice_id, sent_at=declared,
                                   opened_at=None if opened is None
                                   else declared + timedelta(minutes=opened)))  # fmt: skip
        await session.flush()  # the calls (the session does not flush by itself)
        for g, offset, step, closed, booking in slots:
            start = datetime.combine(started.date() + timedelta(days=offset),
                                     datetime.min.time(), PARIS) + timedelta(
                hours=7, minutes=20 * step)  # fmt: skip
            if (g, start) in taken:
                continue
            taken.add((g, start))
            status = "unavailable" if closed else ("free" if booking in (None, "cancelled")
                                                   else "booked")  # fmt: skip
            slot = Slot(practitioner_id=gps[g].id, territory_id=territory_id, source="manual",
                        start=start, end=start + timedelta(minutes=20), modality="cabinet",
                        visibility="sas", status=status, crisis_id=crisis.id,
                        created_at=declared)  # fmt: skip
            session.add(slot)
            await session.flush()
            expected["slots_opened"] += not closed
            expected["slots_booked"] += not closed and booking not in (None, "cancelled")
            if closed or booking is None:
                continue
            if booking == "rebooked":
                session.add(_booking(slot, practice_id, "cancelled", declared))
                await session.flush()
                booking = "booked"
            session.add(_booking(slot, practice_id, booking, declared))
            await session.flush()
    return crises, expected


def _numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [x for inner in value.values() for x in _numbers(inner)]
    return [value] if isinstance(value, int | float) else []


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(crises_in=st.lists(crisis_st, min_size=1, max_size=3))
async def test_crisis_figures_are_sane_and_equal_the_reports(session, territory, crises_in):
    t, practice = uuid.UUID(territory.id), uuid.UUID(territory.practice_id)
    nested = await session.begin_nested()
    try:
        crises, expected = await _history(session, t, practice, crises_in)

        async def compute(granularity: indicators.Granularity) -> list[indicators.Figures]:
            return await indicators.compute(
                session, t, "Europe/Paris", granularity, date(2027, 2, 22), date(2027, 4, 5),
                now=NOW,
            )  # fmt: skip

        months = await compute("month")
        total: dict[str, int] = {}
        for m in months:
            assert all(x >= 0 for x in _numbers(m.crisis)), m.crisis
            for name, value in m.crisis.items():
                if name.startswith("share"):
                    assert value is None or 0 <= value <= 1, (name, value)
                else:
                    total[name] = total.get(name, 0) + value
        weeks: dict[str, int] = {}
        for w in await compute("week"):
            for name, value in w.crisis.items():
                if not name.startswith("share"):
                    weeks[name] = weeks.get(name, 0) + value
        assert weeks == total

        territory_row = await session.get(Territory, t)
        summed = dict.fromkeys(
            ("volunteers_called", "pledges_honoured", "opened_within_2h",
             "opened_within_24h", "slots_opened", "booked"), 0)  # fmt: skip
        for crisis in crises:
            report = await crisis_report(session, crisis, territory_row, NOW)
            assert all(x >= 0 for x in _numbers(report.totals.model_dump()))
            for name in summed:
                summed[name] += getattr(report.totals, name)
            assert report.totals.honoured + report.totals.no_show <= report.totals.booked
        assert total["crises_declared"] == len(crises)
        assert {
            "volunteers_called": total["volunteers_called"],
            "pledges_honoured": total["pledges_honoured"],
            "opened_within_2h": total["opened_within_2h"],
            "opened_within_24h": total["opened_within_24h"],
            "slots_opened": total["slots_opened"],
            "booked": total["slots_booked"],
        } == summed
        assert {k: total[k] for k in expected} == expected
        assert total["opened_within_2h"] <= total["opened_within_24h"] <= total["pledges_honoured"]
        assert total["slots_booked"] <= total["slots_opened"]
    finally:
        await nested.rollback()
