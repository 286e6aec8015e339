"""Publication, preview, the materialisation job and search around the changes of the
clocks, at dates given to the service's clock (app.clock): what the database stores is
exactly what `expand_rule` computes, in Europe/Paris and in overseas zones (with and
without DST), whatever day the tests run on."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app import jobs
from app.activity.models import ActivityEvent
from app.clock import frozen_at
from app.config import get_settings
from app.sas_bridge.feed_ical import parse_ical
from app.sas_bridge.feed_parse import Window
from app.scheduling import preview as rule_preview
from app.scheduling import publication
from app.scheduling.models import Slot
from app.scheduling.rules import RuleSpec, expand_rule
from app.scheduling.schemas import RuleIn
from tests.conftest import ADMIN_CALLER, create_gp, make_territory

PARIS = ZoneInfo("Europe/Paris")
ZONES = ("Europe/Paris", "Indian/Reunion", "America/Martinique", "America/Miquelon")


def rule_body(**over: Any) -> dict[str, Any]:
    return {
        "rrule": "FREQ=WEEKLY;BYDAY=SA",
        "start_time": "20:00",
        "end_time": "08:00",
        "slot_minutes": 60,
        "modality": "cabinet",
        "visibility": "sas",
        "valid_from": "2027-01-01",
        **over,
    }


def spec_of(body: dict[str, Any]) -> RuleSpec:
    data = RuleIn.model_validate(body)
    return RuleSpec(
        data.rrule,
        data.start_time,
        data.end_time,
        data.slot_minutes,
        data.valid_from,
        data.valid_until,
    )


async def new_gp(session, timezone: str) -> uuid.UUID:
    """A territory in `timezone`, a practice and a GP, through the services."""
    return (await create_gp(session, f"CPTS {uuid.uuid4().hex[:8]}", timezone=timezone)).id


async def stored(session, practitioner_id) -> list[tuple[datetime, datetime]]:
    rows = await session.execute(
        select(Slot.start, Slot.end)
        .where(Slot.practitioner_id == practitioner_id)
        .order_by(Slot.start)
    )
    return [(r.start, r.end) for r in rows]


def horizon(now: datetime) -> datetime:
    return now + timedelta(days=get_settings().horizon_days)


def in_utc(slots):
    return [(a.astimezone(UTC), b.astimezone(UTC)) for a, b in slots]


def assert_no_overlap(slots: list[tuple[datetime, datetime]]) -> None:
    for (_, end), (next_start, _) in itertools.pairwise(sorted(slots)):
        assert end <= next_start


def shown(slots: list[tuple[datetime, datetime]], tz: ZoneInfo) -> list[str]:
    return [s.astimezone(tz).isoformat() for s, _ in slots]


# The night the clocks go back, through the API --------------------------------------------


@pytest.mark.parametrize(("minutes", "count"), [(60, 13), (30, 26)], ids=["60-minute", "30-minute"])
async def test_a_saturday_night_rule_published_before_the_clocks_go_back_holds_13_hours(
    client, territory, clock, minutes, count
):
    clock.set(datetime(2027, 10, 29, 10, 0, tzinfo=PARIS))  # Friday
    path = f"/v1/practitioners/{territory.practitioner_id}"
    r = await client.post(
        f"{path}/availability-rules", json=rule_body(slot_minutes=minutes),
        headers=territory.practice,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    night = (
        await client.get(
            f"{path}/slots",
            params={"from": "2027-10-30T12:00:00+02:00", "to": "2027-10-31T12:00:00+01:00"},
            headers=territory.practice,
        )
    ).json()
    assert len(night) == count
    assert night[0]["start"] == "2027-10-30T20:00:00+02:00"
    assert night[-1]["end"] == "2027-10-31T08:00:00+01:00"
    starts = [s["start"] for s in night]
    assert "2027-10-31T02:00:00+02:00" in starts and "2027-10-31T02:00:00+01:00" in starts
    for a, b in itertools.pairwise(night):
        assert datetime.fromisoformat(a["end"]) == datetime.fromisoformat(b["start"])


async def test_editing_a_night_rule_before_the_clocks_go_back_is_accepted(client, territory, clock):
    clock.set(datetime(2027, 10, 29, 10, 0, tzinfo=PARIS))
    path = f"/v1/practitioners/{territory.practitioner_id}"
    r = await client.post(
        f"{path}/availability-rules", json=rule_body(), headers=territory.practice
    )
    assert r.status_code == 201, r.text
    r = await client.patch(
        f"{path}/availability-rules/{r.json()['id']}",
        json={"slot_minutes": 30},
        headers=territory.practice,
    )
    assert r.status_code == 200, r.text
    night = (
        await client.get(
            f"{path}/slots",
            params={"from": "2027-10-30T12:00:00+02:00", "to": "2027-10-31T12:00:00+01:00"},
            headers=territory.practice,
        )
    ).json()
    assert len(night) == 26 and night[-1]["end"] == "2027-10-31T08:00:00+01:00"


async def test_a_sunday_rule_over_the_repeated_hour_holds_4_hours_of_slots(
    client, territory, clock
):
    clock.set(datetime(2027, 10, 29, 10, 0, tzinfo=PARIS))
    path = f"/v1/practitioners/{territory.practitioner_id}"
    r = await client.post(
        f"{path}/availability-rules",
        json=rule_body(rrule="FREQ=WEEKLY;BYDAY=SU", start_time="01:00", end_time="04:00"),
        headers=territory.practice,
    )
    assert r.status_code == 201, r.text
    day = (
        await client.get(
            f"{path}/slots",
            params={"from": "2027-10-31T00:00:00+02:00", "to": "2027-11-01T00:00:00+01:00"},
            headers=territory.practice,
        )
    ).json()
    assert [s["start"] for s in day] == [
        "2027-10-31T01:00:00+02:00",
        "2027-10-31T02:00:00+02:00",
        "2027-10-31T02:00:00+01:00",
        "2027-10-31T03:00:00+01:00",
    ]


async def test_the_offer_of_the_night_the_clocks_go_back_counts_13_hours(
    client, territory, clock, session
):
    clock.set(datetime(2027, 10, 29, 10, 0, tzinfo=PARIS))
    path = f"/v1/practitioners/{territory.practitioner_id}"
    r = await client.post(
        f"{path}/availability-rules",
        json=rule_body(valid_from="2027-10-30", valid_until="2027-10-30"),
        headers=territory.practice,
    )
    assert r.status_code == 201, r.text
    events = (
        await session.scalars(
            select(ActivityEvent).where(
                ActivityEvent.type == "slots.offered",
                ActivityEvent.practitioner_id == uuid.UUID(territory.practitioner_id),
            )
        )
    ).all()
    days = {d: v for e in events for d, v in e.data["days"].items()}
    assert days == {
        "2027-10-30": {"slots": 4, "minutes": 240},
        "2027-10-31": {"slots": 9, "minutes": 540},
    }


# Publication, preview and job agree with expand_rule, around every change -------------------

# (zone, the clock, a rule): the changes of 2027 and 2028 in Paris (last Sundays of March
# and October) and Miquelon (second Sunday of March, first of November), the leap day, the
# year end, and the same nights in zones without DST.
CASES = [
    ("Europe/Paris", datetime(2027, 10, 29, 9, tzinfo=UTC), {}),
    ("Europe/Paris", datetime(2027, 10, 29, 9, tzinfo=UTC), {"slot_minutes": 30}),
    ("Europe/Paris", datetime(2027, 10, 29, 9, tzinfo=UTC),
     {"rrule": "FREQ=WEEKLY;BYDAY=SU", "start_time": "01:00", "end_time": "04:00"}),
    ("Europe/Paris", datetime(2027, 3, 26, 9, tzinfo=UTC), {}),
    ("Europe/Paris", datetime(2028, 3, 24, 9, tzinfo=UTC), {}),
    ("Europe/Paris", datetime(2028, 10, 27, 9, tzinfo=UTC), {"slot_minutes": 20}),
    ("Europe/Paris", datetime(2028, 10, 27, 9, tzinfo=UTC),
     {"rrule": "FREQ=DAILY", "start_time": "02:30", "end_time": "02:30", "slot_minutes": 90}),
    ("Europe/Paris", datetime(2028, 2, 27, 9, tzinfo=UTC),
     {"rrule": "FREQ=DAILY", "start_time": "22:00", "end_time": "06:00"}),
    ("Europe/Paris", datetime(2027, 12, 30, 9, tzinfo=UTC),
     {"rrule": "FREQ=DAILY", "start_time": "18:00", "end_time": "02:00", "slot_minutes": 15}),
    ("America/Miquelon", datetime(2027, 11, 4, 12, tzinfo=UTC),
     {"rrule": "FREQ=WEEKLY;BYDAY=SA"}),
    ("America/Miquelon", datetime(2028, 3, 9, 12, tzinfo=UTC),
     {"rrule": "FREQ=DAILY", "start_time": "01:00", "end_time": "04:00", "slot_minutes": 30}),
    ("America/Martinique", datetime(2027, 10, 29, 9, tzinfo=UTC), {}),
    ("Indian/Reunion", datetime(2028, 10, 27, 9, tzinfo=UTC), {}),
    ("Indian/Reunion", datetime(2028, 2, 27, 9, tzinfo=UTC),
     {"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "start_time": "08:00",
      "end_time": "12:00"}),
]  # fmt: skip


@pytest.mark.parametrize(("timezone", "now", "over"), CASES)
async def test_published_slots_are_the_expansion_of_the_rule(session, clock, timezone, now, over):
    clock.set(now)
    tz = ZoneInfo(timezone)
    gp = await new_gp(session, timezone)
    body = rule_body(**over)
    preview, _ = await rule_preview.preview_rule(session, ADMIN_CALLER, gp, RuleIn(**body))
    await publication.create_rule(session, ADMIN_CALLER, gp, RuleIn(**body))
    expected = expand_rule(spec_of(body), tz, now, horizon(now))
    published = await stored(session, gp)
    assert expected, "the case must publish something"
    assert shown(published, tz) == shown(expected, tz)
    assert published == expected
    assert [(p.start, p.end) for p in preview] == expected
    assert not any(p.blocked_by for p in preview)
    assert_no_overlap(published)


@pytest.mark.parametrize(("timezone", "now", "over"), CASES)
async def test_the_hourly_job_extends_the_rule_as_the_expansion_says(
    session, sessionmaker, clock, timezone, now, over
):
    """Published two weeks before, the change beyond the horizon; then the job every hour for
    three days from two days before the change: each run succeeds, and the slots are the
    rule's expansion from its publication to the last horizon."""
    published_at = now - timedelta(days=15)
    clock.set(published_at)
    tz = ZoneInfo(timezone)
    gp = await new_gp(session, timezone)
    body = rule_body(**over)
    await publication.create_rule(session, ADMIN_CALLER, gp, RuleIn(**body))
    await session.commit()
    clock.set(now)
    for _ in range(72):
        clock.advance(hours=1)
        result = await jobs.run_exclusive(sessionmaker, "materialize", jobs._materialize)
        assert result is not None and result["skipped"] == 0, result
    published = await stored(session, gp)
    spec, first_run = spec_of(body), now + timedelta(hours=1)
    # What the publication made, then what the runs made from the first one's time on (the
    # days between the first horizon and the first run had passed: never materialised).
    expected = sorted(
        {*expand_rule(spec, tz, published_at, horizon(published_at)),
         *expand_rule(spec, tz, first_run, horizon(clock.at))}
    )  # fmt: skip
    assert in_utc(published) == in_utc(expected)
    assert_no_overlap(published)


async def test_search_on_the_night_the_clocks_go_back_offers_its_13_slots(client, territory, clock):
    clock.set(datetime(2027, 10, 28, 12, tzinfo=PARIS))
    path = f"/v1/practitioners/{territory.practitioner_id}"
    r = await client.post(
        f"{path}/availability-rules", json=rule_body(), headers=territory.practice
    )
    assert r.status_code == 201, r.text
    clock.set(datetime(2027, 10, 30, 19, tzinfo=PARIS))  # the default window: 48 hours
    found = (await client.get("/v1/slots", headers=territory.regulator)).json()["items"]
    night = [s["start"] for s in found if s["start"] < "2027-11-01"]
    assert len(night) == 13
    assert night[6:8] == ["2027-10-31T02:00:00+02:00", "2027-10-31T02:00:00+01:00"]
    clock.set(datetime(2027, 10, 31, 2, 30, tzinfo=PARIS, fold=1))  # past slots are gone
    found = (await client.get("/v1/slots", headers=territory.regulator)).json()["items"]
    assert found[0]["start"] == "2027-10-31T03:00:00+01:00"


async def test_an_overseas_territory_publishes_and_searches_in_its_own_time(
    client, world, admin, clock
):
    clock.set(datetime(2028, 3, 24, 9, tzinfo=UTC))
    miquelon = await make_territory(
        client, world, admin, name="CPTS Miquelon", timezone="America/Miquelon",
        department="975",
    )  # fmt: skip
    path = f"/v1/practitioners/{miquelon.practitioner_id}"
    r = await client.post(
        f"{path}/availability-rules",
        json=rule_body(rrule="FREQ=DAILY", start_time="17:00", end_time="19:00"),
        headers=miquelon.practice,
    )
    assert r.status_code == 201, r.text
    found = (await client.get("/v1/slots", headers=miquelon.regulator)).json()["items"]
    assert found and {s["start"][11:] for s in found} <= {"17:00:00-02:00", "18:00:00-02:00"}


# The property -----------------------------------------------------------------------------

_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    minutes = draw(st.sampled_from([10, 15, 20, 30, 45, 60, 90, 120]))
    # Often a start in the night, when the clocks change.
    start = draw(st.one_of(st.integers(0, 24 * 4 - 1), st.integers(19 * 4, 27 * 4))) * 15
    start %= 24 * 60
    length = draw(st.integers(1, 12 * 60 // minutes)) * minutes
    end = (start + length) % (24 * 60)
    freq = draw(st.sampled_from(["DAILY", "WEEKLY"]))
    rrule = f"FREQ={freq}"
    if freq == "WEEKLY":
        days = draw(st.lists(st.sampled_from(_DAYS), min_size=1, max_size=3, unique=True))
        rrule += ";BYDAY=" + ",".join(days)
    return rule_body(
        rrule=rrule,
        start_time=f"{start // 60:02d}:{start % 60:02d}",
        end_time=f"{end // 60:02d}:{end % 60:02d}",
        slot_minutes=minutes,
        valid_from=draw(st.dates(date(2026, 12, 1), date(2029, 1, 31))).isoformat(),
    )


# Instants near the changes of 2027 and 2028 half of the time, anywhere in those years else.
_CHANGES = [datetime(y, m, d, tzinfo=UTC) for y, m, d in [
    (2027, 3, 28), (2027, 10, 31), (2028, 3, 26), (2028, 10, 29),  # Paris
    (2027, 3, 14), (2027, 11, 7), (2028, 3, 12), (2028, 11, 5),  # Miquelon
    (2028, 2, 29), (2028, 1, 1),
]]  # fmt: skip
_NEAR_A_CHANGE = st.builds(
    lambda at, hours: at + timedelta(hours=hours),
    st.sampled_from(_CHANGES),
    st.integers(-24 * 15, 24),
)
_ANY_TIME = st.datetimes(datetime(2027, 1, 1), datetime(2028, 12, 31), timezones=st.just(UTC))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rule=rules(), timezone=st.sampled_from(ZONES), now=st.one_of(_NEAR_A_CHANGE, _ANY_TIME))
async def test_property_sql_published_slots_are_the_expansion_and_never_overlap(
    session, rule, timezone, now
):
    with frozen_at(now):
        gp = await new_gp(session, timezone)
        await publication.create_rule(session, ADMIN_CALLER, gp, RuleIn(**rule))
    published = await stored(session, gp)
    assert published == expand_rule(spec_of(rule), ZoneInfo(timezone), now, horizon(now))
    assert_no_overlap(published)


# Feeds ------------------------------------------------------------------------------------


def _ical(*lines: str) -> bytes:
    body = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Cabinet//Agenda//FR", "BEGIN:VEVENT",
            "UID:nuit@cabinet.example", "DTSTAMP:20271001T000000Z", "CATEGORIES:SNP", *lines,
            "END:VEVENT", "END:VCALENDAR"]  # fmt: skip
    return ("\r\n".join(body) + "\r\n").encode()


def _feed_slots(body: bytes, minutes: int) -> list[tuple[datetime, datetime]]:
    window = Window(datetime(2027, 10, 29, tzinfo=UTC), datetime(2027, 11, 2, tzinfo=UTC))
    slots = parse_ical(
        body, "text/calendar", tz=PARIS, window=window, category="snp", modality="cabinet",
        slot_minutes=minutes, max_slots=500,
    )  # fmt: skip
    return [(s.start, s.end) for s in slots.slots]


@pytest.mark.parametrize("end_line", ["DTEND;TZID=Europe/Paris:20271031T080000", "DURATION:PT13H"])
def test_a_feed_night_when_the_clocks_go_back_is_cut_like_the_rule(end_line):
    """An event 20:00+02:00 to 08:00+01:00 (13 hours, whether by DTEND or by DURATION, an
    exact duration in RFC 5545) gives the slots of the same night's rule."""
    body = _ical("DTSTART;TZID=Europe/Paris:20271030T200000", end_line)
    rule = spec_of(rule_body(valid_from="2027-10-30", valid_until="2027-10-30", slot_minutes=30))
    window = (datetime(2027, 10, 29, tzinfo=UTC), datetime(2027, 11, 2, tzinfo=UTC))
    assert _feed_slots(body, 30) == expand_rule(rule, PARIS, *window)


def test_a_feed_duration_over_the_repeated_hour_is_elapsed_time():
    body = _ical("DTSTART;TZID=Europe/Paris:20271031T013000", "DURATION:PT2H")
    assert shown(_feed_slots(body, 30), PARIS) == [
        "2027-10-31T01:30:00+02:00",
        "2027-10-31T02:00:00+02:00",
        "2027-10-31T02:30:00+02:00",
        "2027-10-31T02:00:00+01:00",
    ]
