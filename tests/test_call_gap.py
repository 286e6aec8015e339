"""Where the link of a call for slots lands (app.unmet_demand.call_gap): the first whole local
hour of the call's window, in the GP's hours, without a slot or an absence of theirs, with the
fewest free SAS slots in the territory; never an hour the clocks skip, a repeated hour once;
None when no hour qualifies."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from app.activity.models import ActivityEvent
from app.directory.models import Practitioner
from app.scheduling.models import AvailabilityRule, Slot, Unavailability
from app.unmet_demand import call_gap
from app.unmet_demand.models import SlotCall
from tests.conftest import create_gp

PARIS = ZoneInfo("Europe/Paris")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS).astimezone(UTC)


def local(value: datetime) -> str:
    return f"{value.astimezone(PARIS):%Y-%m-%d %H:%M}"


async def other_gp(session, gp: Practitioner) -> Practitioner:
    """A second GP of the same practice, whose slots make the territory's offer."""
    other = Practitioner(
        practice_id=gp.practice_id,
        territory_id=gp.territory_id,
        rpps=f"{uuid.uuid4().int % 10**11:011d}",
        family_name="Roux",
        given_name="Paul",
    )
    session.add(other)
    await session.flush()
    return other


def slot(gp: Practitioner, start: datetime, minutes: int = 30, **over) -> Slot:
    return Slot(
        practitioner_id=gp.id,
        territory_id=gp.territory_id,
        source="manual",
        start=start,
        end=start + timedelta(minutes=minutes),
        modality="cabinet",
        visibility=over.pop("visibility", "sas"),
        status=over.pop("status", "free"),
        **over,
    )


def call(gp: Practitioner, sent_at: datetime) -> SlotCall:
    return SlotCall(
        id=uuid.uuid4(),
        territory_id=gp.territory_id,
        practitioner_id=gp.id,
        practice_id=gp.practice_id,
        day=sent_at.astimezone(PARIS).date(),
        sent_at=sent_at,
        free_slots=0,
        floor=3,
    )


def daytime_offer(session, gp: Practitioner, special: dict[tuple[int, int], Any]) -> None:
    """A free SAS slot of `gp` at each daytime hour (08:00-19:00) of 2-4 December 2026;
    `special` changes the slot of some (day, hour): None leaves it out."""
    for day in (2, 3, 4):
        for h in range(8, 20):
            over = special.get((day, h), {})
            if over is not None:
                session.add(slot(gp, paris(2026, 12, day, h, 0), **over))


async def gap(session, gp, sent_at, now=None, window=48) -> call_gap.Gap | None:
    """The gap for a call sent at `sent_at` (opened then, or at `now`), GP hours read."""
    the_call = call(gp, sent_at)
    now = now or sent_at
    until = sent_at + timedelta(hours=window)
    hours = await call_gap.read_gp_hours(
        session, gp, sent_at.astimezone(PARIS).date(), until.astimezone(PARIS).date()
    )
    return await call_gap.find_gap(session, the_call, gp, PARIS, now, hours, window)


async def test_the_hour_with_the_fewest_free_sas_slots_is_chosen(session):
    gp = await create_gp(session, "CPTS du creux")
    offer = await other_gp(session, gp)
    # Wednesday 2 December 2026, a call at 07:30: candidates 09:00 .. 19:00 that day, then
    # the next days. Every daytime hour of the window has a free SAS slot but 15:00.
    sent = paris(2026, 12, 2, 7, 30)
    daytime_offer(session, offer, {(2, 15): None})
    # 15:00-16:00 on the 2nd also holds slots that are not free SAS offer.
    session.add(slot(offer, paris(2026, 12, 2, 15, 0), status="booked"))
    session.add(slot(offer, paris(2026, 12, 2, 15, 30), visibility="cpts"))
    await session.flush()
    found = await gap(session, gp, sent)
    assert found is not None
    assert (local(found.start), local(found.end), found.free_slots) == (
        "2026-12-02 15:00",
        "2026-12-02 16:00",
        0,
    )


async def test_ties_go_to_the_earliest_hour_after_an_hour_from_now(session):
    gp = await create_gp(session, "CPTS de l'égalité")
    sent = paris(2026, 12, 2, 9, 10)
    found = await gap(session, gp, sent)
    assert found is not None and local(found.start) == "2026-12-02 11:00"  # 10:00 < 09:10 + 1 h


async def test_a_running_hold_is_not_free_and_an_expired_one_is(session):
    gp = await create_gp(session, "CPTS des attentes")
    offer = await other_gp(session, gp)
    sent = paris(2026, 12, 2, 7, 30)
    held = {"status": "held", "hold_expires_at": sent + timedelta(hours=1)}
    daytime_offer(session, offer, {(2, 10): held})
    await session.flush()
    found = await gap(session, gp, sent)
    assert found is not None and local(found.start) == "2026-12-02 10:00"
    assert found.free_slots == 0
    # Opened once the hold has expired: the slot is free again, as the search sees it.
    later = await gap(session, gp, sent, now=sent + timedelta(minutes=61))
    assert later is not None and later.free_slots == 1


async def test_the_gps_own_slot_and_absence_hours_are_skipped(session):
    gp = await create_gp(session, "CPTS de l'agenda plein")
    sent = paris(2026, 12, 2, 7, 30)
    session.add(slot(gp, paris(2026, 12, 2, 9, 45), visibility="cpts"))  # 09:00 taken
    session.add(slot(gp, paris(2026, 12, 2, 10, 50), minutes=20))  # runs into 11:00
    session.add(
        Unavailability(practitioner_id=gp.id, start=paris(2026, 12, 2, 12, 0),
                       end=paris(2026, 12, 2, 14, 30))
    )  # fmt: skip
    await session.flush()
    found = await gap(session, gp, sent)
    # 09:00 and 10:00-12:00 hold slots of theirs, 12:00-15:00 their absence.
    assert found is not None and local(found.start) == "2026-12-02 15:00"


async def test_the_gps_rule_hours_and_usual_length(session):
    gp = await create_gp(session, "CPTS des horaires")
    for start, end in ((time(14), time(18)), (time(9), time(12))):
        session.add(
            AvailabilityRule(practitioner_id=gp.id, rrule="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
                             start_time=start, end_time=end, slot_minutes=20,
                             modality="cabinet", visibility="sas", valid_from=date(2026, 1, 1))
        )  # fmt: skip
    await session.flush()
    hours = await call_gap.read_gp_hours(session, gp, date(2026, 12, 2), date(2026, 12, 4))
    assert sorted(hours.hours) == [9, 10, 11, 14, 15, 16, 17]
    assert hours.slot_minutes == 20
    found = await gap(session, gp, paris(2026, 12, 2, 12, 5))
    assert found is not None and local(found.start) == "2026-12-02 14:00"  # 13:00 not theirs


async def test_surnumeraire_hours_are_the_gps_hours(session):
    gp = await create_gp(session, "CPTS de la nuit", accepts_overbooking=True,
                         overbooking_daily_cap=2, overbooking_start_time=time(21),
                         overbooking_end_time=time(1))  # fmt: skip
    found = await gap(session, gp, paris(2026, 12, 2, 10, 0))
    assert found is not None and local(found.start) == "2026-12-02 21:00"


def test_hours_between_wraps_past_midnight_and_rounds_out():
    assert call_gap.hours_between(time(8, 30), time(10)) == {8, 9}
    assert call_gap.hours_between(time(8), time(10, 15)) == {8, 9, 10}
    assert call_gap.hours_between(time(22), time(2)) == {22, 23, 0, 1}
    assert call_gap.hours_between(time(0), time(0)) == set(range(24))


def test_the_hour_the_clocks_skip_in_march_does_not_exist():
    hours = call_gap.local_hours(paris(2026, 3, 29, 0, 0), paris(2026, 3, 29, 5, 0), PARIS)
    assert [f"{s.astimezone(PARIS):%H:%M}-{e.astimezone(PARIS):%H:%M}" for s, e in hours] == [
        "00:00-01:00",
        "01:00-03:00",  # one hour of elapsed time: 02:00 does not exist
        "03:00-04:00",
        "04:00-05:00",
    ]
    assert all(e - s == timedelta(hours=1) for s, e in hours)


def test_the_repeated_hour_in_october_is_one_hour():
    hours = call_gap.local_hours(
        paris(2026, 10, 25, 0, 0), datetime(2026, 10, 25, 4, 0, tzinfo=UTC), PARIS
    )
    labels = [f"{s.astimezone(PARIS):%H:%M}" for s, _ in hours]
    assert labels == ["00:00", "01:00", "02:00", "03:00", "04:00"]
    repeated = hours[2]
    assert repeated[1] - repeated[0] == timedelta(hours=2)  # both occurrences of 02:00
    assert all(a[1] == b[0] for a, b in pairwise(hours))  # no overlap


async def test_on_the_march_night_the_missing_hour_is_never_proposed(session):
    gp = await create_gp(session, "CPTS du printemps", accepts_overbooking=True,
                         overbooking_daily_cap=2, overbooking_start_time=time(0),
                         overbooking_end_time=time(6))  # fmt: skip
    offer = await other_gp(session, gp)
    sent = paris(2026, 3, 28, 22, 0)  # Saturday night; the clocks go forward at 02:00
    # A free slot in each real hour of the night but at 03:00 (01:00 UTC).
    for utc_hour in range(23, 23 + 8):
        start = datetime(2026, 3, 28, tzinfo=UTC) + timedelta(hours=utc_hour)
        if start != datetime(2026, 3, 29, 1, tzinfo=UTC):
            session.add(slot(offer, start))
    await session.flush()
    found = await gap(session, gp, sent, window=8)
    assert found is not None and found.free_slots == 0
    assert local(found.start) == "2026-03-29 03:00"
    assert found.end - found.start == timedelta(hours=1)


async def test_on_the_october_night_the_repeated_hour_counts_its_slots_once(session):
    gp = await create_gp(session, "CPTS de l'automne", accepts_overbooking=True,
                         overbooking_daily_cap=2, overbooking_start_time=time(0),
                         overbooking_end_time=time(6))  # fmt: skip
    offer = await other_gp(session, gp)
    sent = paris(2026, 10, 24, 22, 0)
    # One free slot per real hour from 22:00 CEST on: local 02:00 happens twice (00:00 and
    # 01:00 UTC), so its one candidate holds 2 slots; 04:00 local has none.
    for utc_hour in range(20, 20 + 10):
        start = datetime(2026, 10, 24, tzinfo=UTC) + timedelta(hours=utc_hour)
        if start != datetime(2026, 10, 25, 3, tzinfo=UTC):  # 04:00 CET
            session.add(slot(offer, start))
    await session.flush()
    candidates = call_gap.local_hours(sent + call_gap.LEAD, sent + timedelta(hours=9), PARIS)
    assert [f"{s.astimezone(PARIS):%H}" for s, _ in candidates].count("02") == 1
    found = await gap(session, gp, sent, window=9)
    assert found is not None and local(found.start) == "2026-10-25 04:00"
    # Without that hole, the repeated hour has two free slots and is never the thinnest.
    session.add(slot(offer, datetime(2026, 10, 25, 3, tzinfo=UTC)))
    await session.flush()
    found = await gap(session, gp, sent, window=9)
    assert found is not None and found.free_slots == 1
    assert local(found.start) == "2026-10-25 00:00"  # the GP's hours start at midnight


async def test_no_hour_qualifies_when_the_gp_is_absent_throughout(session):
    gp = await create_gp(session, "CPTS de l'absence")
    sent = paris(2026, 12, 2, 7, 30)
    session.add(Unavailability(practitioner_id=gp.id, start=sent, end=sent + timedelta(days=3)))
    await session.flush()
    assert await gap(session, gp, sent) is None


async def test_a_window_already_over_falls_back_to_the_next_hour(session):
    gp = await create_gp(session, "CPTS du retard")
    sent = paris(2026, 12, 2, 7, 30)
    the_call = call(gp, sent)
    session.add(the_call)
    await session.flush()
    now = sent + timedelta(hours=47, minutes=30)  # the link still valid, the window past
    proposed = await call_gap.prefill(session, the_call, gp, PARIS, now)
    assert proposed.gap is None
    assert local(proposed.start) == "2026-12-04 09:00"  # 07:00 + 1 h, next whole hour
    assert proposed.minutes == call_gap.SLOT_MINUTES


async def test_the_window_is_the_one_the_call_was_sent_for(session):
    gp = await create_gp(session, "CPTS de la fenêtre")
    the_call = call(gp, paris(2026, 12, 2, 7, 30))
    session.add(the_call)
    await session.flush()
    assert await call_gap.window_hours(session, the_call) == call_gap.DEFAULT_WINDOW_HOURS
    session.add(
        ActivityEvent(type="slots.call_sent", territory_id=gp.territory_id,
                      practitioner_id=gp.id, subject_id=the_call.id,
                      data={"free_slots": 0, "floor": 3, "window_hours": 6})
    )  # fmt: skip
    await session.flush()
    assert await call_gap.window_hours(session, the_call) == 6
