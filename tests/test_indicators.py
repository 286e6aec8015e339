"""Indicators computed from the activity log, on a scenario with known answers."""

import csv
import io
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from app.activity.models import ActivityEvent
from app.activity.service import rebuild_rollups
from tests.conftest import assert_problem

PARIS = ZoneInfo("Europe/Paris")
A, B = uuid.uuid4(), uuid.uuid4()
B1, B2, B3, B4, B5, B6, B7 = (uuid.uuid4() for _ in range(7))
R1, R2, R3 = (uuid.uuid4() for _ in range(3))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def seed(session, territory_id):
    t = uuid.UUID(territory_id)

    def ev(when, type_, practitioner=None, subject=None, **data):
        return {
            "at": at(when),
            "type": type_,
            "territory_id": t,
            "practitioner_id": practitioner,
            "subject_id": subject,
            "data": data,
        }

    events = [
        ev(
            "2027-03-20T10:00:00+01:00",
            "slots.offered",
            A,
            modality="cabinet",
            visibility="sas",
            days={
                "2027-03-28": {"slots": 4, "minutes": 80},
                "2027-03-31": {"slots": 2, "minutes": 40},
            },
        ),
        ev(
            "2027-03-25T10:00:00+01:00",
            "slots.withdrawn",
            A,
            modality="cabinet",
            visibility="sas",
            days={"2027-03-31": {"slots": 1, "minutes": 20}},
        ),
        ev(
            "2027-03-25T10:00:00+01:00",
            "slots.offered",
            B,
            modality="visite",
            visibility="sas",
            days={"2027-04-01": {"slots": 3, "minutes": 60}},
        ),
        # Each booking is the `subject_id` of its events and counts once, by its final
        # status. 23:30 local on 31 March: a March booking (b7).
        ev(
            "2027-03-27T10:00:00+01:00",
            "booking.booked",
            A,
            subject=B1,
            modality="cabinet",
            lead_minutes=1440,
            start="2027-03-28T10:00:00+02:00",
        ),
        ev(
            "2027-03-27T12:00:00+01:00",
            "booking.booked",
            A,
            subject=B5,
            modality="cabinet",
            lead_minutes=1380,
            start="2027-03-28T11:00:00+02:00",
        ),
        ev(
            "2027-03-28T11:30:00+02:00",
            "booking.honored",
            A,
            subject=B5,
            modality="cabinet",
            start="2027-03-28T11:00:00+02:00",
        ),
        ev(
            "2027-03-27T13:00:00+01:00",
            "booking.booked",
            A,
            subject=B6,
            modality="cabinet",
            lead_minutes=1380,
            start="2027-03-28T12:00:00+02:00",
        ),
        ev(
            "2027-03-28T12:30:00+02:00",
            "booking.no_show",
            A,
            subject=B6,
            modality="cabinet",
            start="2027-03-28T12:00:00+02:00",
        ),
        ev(
            "2027-03-31T23:30:00+02:00",
            "booking.booked",
            B,
            subject=B7,
            modality="visite",
            lead_minutes=690,
            start="2027-04-01T11:00:00+02:00",
        ),
        # 00:30 local on 1 April is still 31 March in UTC: an April booking, cancelled.
        ev(
            "2027-04-01T00:30:00+02:00",
            "booking.booked",
            B,
            subject=B2,
            modality="visite",
            lead_minutes=570,
            start="2027-04-01T10:00:00+02:00",
        ),
        ev(
            "2027-04-01T05:00:00+02:00",
            "booking.cancelled",
            B,
            subject=B2,
            modality="visite",
            was="booked",
            start="2027-04-01T10:00:00+02:00",
        ),
        # A hold let go: neither a booking nor a cancellation.
        ev(
            "2027-04-01T08:00:00+02:00",
            "booking.held",
            B,
            subject=B4,
            modality="visite",
            start="2027-04-01T12:00:00+02:00",
        ),
        ev(
            "2027-04-01T08:05:00+02:00",
            "booking.cancelled",
            B,
            subject=B4,
            modality="visite",
            was="held",
            start="2027-04-01T12:00:00+02:00",
        ),
        ev(
            "2027-03-10T09:00:00+01:00",
            "booking.overbooked",
            A,
            subject=B3,
            modality="cabinet",
            lead_minutes=60,
            start="2027-03-10T10:00:00+01:00",
        ),
        ev("2027-01-05T09:00:00+01:00", "mt.capacity_set", A, capacity=3),
        ev("2027-02-01T09:00:00+01:00", "mt.registered", subject=R1, priority=2),
        ev("2027-03-15T09:00:00+01:00", "mt.registered", subject=R2, priority=0),
        ev("2027-03-20T09:00:00+01:00", "mt.registered", subject=R3, priority=1),
        ev(
            "2027-03-18T09:00:00+01:00", "mt.attached", A, subject=R1, priority=2, waiting_days=45.0
        ),
        ev("2027-04-02T09:00:00+02:00", "mt.withdrawn", subject=R2, priority=0, was="waiting"),
    ]
    await session.execute(insert(ActivityEvent), events)
    await session.commit()


async def get(client, t, **params):
    params = {"from": "2027-02-01", "to": "2027-05-01", **params}
    r = await client.get("/v1/indicators", params=params, headers=t.coordinator)
    assert r.status_code == 200, r.text
    return {p["period_start"]: p for p in r.json()["periods"]}


async def test_snp_figures_by_month(client, territory, session):
    await seed(session, territory.id)
    months = await get(client, territory)
    march, april = months["2027-03-01"]["snp"], months["2027-04-01"]["snp"]
    # A offers 4 slots on 28 March and 2 on 31 March, one of them withdrawn: 5 slots, 100 min.
    assert (march["slots_offered"], march["hours_offered"], march["practitioners_offering"]) == (
        5,
        1.67,
        1,
    )
    assert (april["slots_offered"], april["hours_offered"]) == (3, 1.0)
    # Made in March and still standing: b1, b5 (honored), b6 (no-show), b7.
    assert march["slots_booked_by_sas"] == 4
    # Seen or expected within 24 h / 48 h: b1, b5, b7 and the surnuméraire b3 (b6 no-show).
    assert (march["booked_within_24h"], march["booked_within_48h"]) == (4, 4)
    # April: b2 cancelled and b4 a hold let go: no booking, one cancellation.
    assert (april["slots_booked_by_sas"], april["cancellations"]) == (0, 1)
    assert (april["booked_within_24h"], april["booked_within_48h"]) == (0, 0)
    # Slots taken by their day: b1, b5, b6 on 28 March (3 of 5); b7 on 1 April (1 of 3).
    assert (march["slots_taken"], march["fill_rate"]) == (3, 0.6)
    assert (april["slots_taken"], april["fill_rate"]) == (1, round(1 / 3, 4))
    assert march["overbooked"] == 1 and march["cancellations"] == 0
    assert (march["honored"], march["no_show"], march["no_show_rate"]) == (1, 1, 0.5)
    # b1, b5, b6, b3 at the practice, b7 at home: 4 of 5 and 1 of 5.
    assert march["modality_share"]["cabinet"] == 0.8
    assert march["modality_share"]["visite"] == 0.2


async def test_mt_figures_by_month(client, territory, session):
    await seed(session, territory.id)
    months = await get(client, territory)
    feb, march, april = (months[m]["mt"] for m in ("2027-02-01", "2027-03-01", "2027-04-01"))
    assert (feb["registered"], feb["waiting_at_end"], feb["remaining_capacity_at_end"]) == (1, 1, 3)
    assert (march["registered"], march["attached"], march["fragile_share_of_attached"]) == (
        2,
        1,
        1.0,
    )
    assert (march["waiting_days_median"], march["waiting_days_p90"]) == (45.0, 45.0)
    assert march["waiting_at_end"] == 2
    assert march["waiting_at_end_by_priority"] == {"0": 1, "1": 1, "2": 0, "3": 0}
    assert march["remaining_capacity_at_end"] == 2
    assert (april["waiting_at_end"], april["remaining_capacity_at_end"]) == (1, 2)


async def test_weeks_start_on_local_mondays(client, territory, session):
    await seed(session, territory.id)
    weeks = await get(
        client, territory, granularity="week", **{"from": "2027-03-22", "to": "2027-04-05"}
    )
    assert list(weeks) == ["2027-03-22", "2027-03-29"]
    # The 28 March (DST day, a Sunday) belongs to the week of 22 March.
    assert weeks["2027-03-22"]["snp"]["slots_offered"] == 4
    assert weeks["2027-03-29"]["snp"]["slots_offered"] == 1 + 3


async def test_csv_and_json_agree(client, territory, session):
    await seed(session, territory.id)
    months = await get(client, territory, granularity="quarter")
    r = await client.get(
        "/v1/indicators",
        params={
            "from": "2027-02-01",
            "to": "2027-05-01",
            "granularity": "quarter",
            "dialect": "raw",
        },
        headers={**territory.coordinator, "Accept": "text/csv"},
    )
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["period_start"] for row in rows] == list(months)
    for row in rows:
        period = months[row["period_start"]]
        assert int(row["snp.slots_offered"]) == period["snp"]["slots_offered"]
        assert int(row["mt.waiting_at_end"]) == period["mt"]["waiting_at_end"]


async def test_role_isolation(client, territory, other_territory):
    r = await client.get("/v1/indicators", headers=territory.dashboard)
    assert r.status_code == 200
    assert_problem(
        await client.get(
            "/v1/indicators",
            params={"territory_id": territory.id},
            headers=other_territory.dashboard,
        ),
        404,
    )
    assert_problem(await client.get("/v1/indicators", headers=territory.practice), 403)
    assert_problem(await client.get("/v1/activity", headers=territory.dashboard), 403)


async def test_activity_log_is_paged_and_scoped(client, territory, other_territory, session):
    await seed(session, territory.id)
    first = (
        await client.get("/v1/activity?limit=5&type=booking.booked", headers=territory.coordinator)
    ).json()
    assert [e["type"] for e in first["items"]] == ["booking.booked"] * 5
    assert first["next_cursor"] is None
    other = (
        await client.get("/v1/activity?type=booking.booked", headers=other_territory.coordinator)
    ).json()
    assert other["items"] == []


async def test_end_to_end_publication_and_booking_reach_the_indicators(client, territory):
    from datetime import timedelta

    from tests.test_bookings import book
    from tests.test_slot_search import add_slot

    slot_id = await add_slot(client, territory, territory.practitioner_id, 30)
    assert (await book(client, territory, slot_id)).status_code == 201
    today = datetime.now(PARIS).date()
    r = await client.get(
        "/v1/indicators",
        params={
            "granularity": "week",
            "from": today.isoformat(),
            "to": (today + timedelta(days=3)).isoformat(),
        },
        headers=territory.coordinator,
    )
    periods = r.json()["periods"]
    assert sum(p["snp"]["slots_offered"] for p in periods) == 1
    assert sum(p["snp"]["slots_booked_by_sas"] for p in periods) == 1
    assert periods[-1]["mt"]["remaining_capacity_at_end"] == 0


async def test_bad_periods_are_422(client, territory):
    for params in (
        {"from": "2027-05-01", "to": "2027-01-01"},
        {"granularity": "decade"},
        {"from": "2020-01-01", "to": "2027-01-01"},
    ):
        assert_problem(
            await client.get("/v1/indicators", params=params, headers=territory.coordinator), 422
        )


async def test_targets_show_progress(client, territory, session):
    await seed(session, territory.id)
    r = await client.put(
        "/v1/indicators/targets",
        json={"year": 2027, "targets": {"snp.slots_offered": 16, "mt.attached": 4}},
        headers=territory.coordinator,
    )
    assert r.status_code == 200, r.text
    assert r.json()["targets"] == {"snp.slots_offered": 16.0, "mt.attached": 4.0}
    body = (
        await client.get(
            "/v1/indicators",
            params={"from": "2027-01-01", "to": "2028-01-01"},
            headers=territory.dashboard,
        )
    ).json()
    progress = {t["indicator"]: t for t in body["targets"]}
    assert (
        progress["snp.slots_offered"]["actual"] == 8
        and progress["snp.slots_offered"]["progress"] == 0.5
    )
    assert progress["mt.attached"]["progress"] == 0.25


async def test_targets_validation_and_roles(client, territory):
    r = await client.put(
        "/v1/indicators/targets",
        json={"year": 2027, "targets": {"snp.fill_rate": 0.5}},
        headers=territory.coordinator,
    )
    assert_problem(r, 422)
    r = await client.put(
        "/v1/indicators/targets",
        json={"year": 2027, "targets": {"mt.attached": 3}},
        headers=territory.dashboard,
    )
    assert_problem(r, 403)


LOG_OFFER = """
    SELECT e.territory_id, date_trunc('week', d.key::date)::date AS week, e.practitioner_id,
           sum(CASE WHEN e.type = 'slots.offered' THEN 1 ELSE -1 END * (d.value->>'slots')::int),
           sum(CASE WHEN e.type = 'slots.offered' THEN 1 ELSE -1 END * (d.value->>'minutes')::int)
    FROM activity_event e, jsonb_each(e.data->'days') AS d
    WHERE e.type IN ('slots.offered', 'slots.withdrawn') AND e.territory_id = :t
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
ROLLED_OFFER = """
    SELECT territory_id, period_start, practitioner_id, sum(slots), sum(minutes)
    FROM offer_period
    WHERE territory_id = :t AND granularity = 'w' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
OFFER_ROWS = (
    "SELECT * FROM offer_period WHERE territory_id = :t "
    "ORDER BY granularity, period_start, practitioner_id, audience"
)
BOOKING_ROWS_SQL = "SELECT * FROM booking_state WHERE territory_id = :t ORDER BY booking_id"
BOOKING_DAYS_SQL = """
    SELECT day, kind, modality, sum(booked), sum(standing), sum(cancelled) FROM booking_day
    WHERE territory_id = :t GROUP BY 1, 2, 3
    HAVING sum(booked) <> 0 OR sum(standing) <> 0 OR sum(cancelled) <> 0 ORDER BY 1, 2, 3
"""
ROLLUPS = (OFFER_ROWS, BOOKING_ROWS_SQL, BOOKING_DAYS_SQL)


async def test_rollups_are_exactly_the_logs_events(client, territory, session):
    from datetime import date, timedelta

    from sqlalchemy import text

    from tests.test_bookings import book
    from tests.test_slot_search import add_slot

    path = f"/v1/practitioners/{territory.practitioner_id}"
    monday = date.today() + timedelta(days=7 - date.today().weekday())
    rule = {
        "rrule": "FREQ=WEEKLY;BYDAY=MO,WE",
        "start_time": "17:00",
        "end_time": "19:00",
        "slot_minutes": 20,
        "modality": "cabinet",
        "visibility": "sas",
        "valid_from": monday.isoformat(),
    }
    r = await client.post(f"{path}/availability-rules", json=rule, headers=territory.practice)
    assert r.status_code == 201, r.text
    rule_id = r.json()["id"]
    r = await client.patch(
        f"{path}/availability-rules/{rule_id}",
        json={"end_time": "18:00"},
        headers=territory.practice,
    )
    assert r.status_code == 200, r.text
    first = await add_slot(client, territory, territory.practitioner_id, 30)
    second = await add_slot(client, territory, territory.practitioner_id, 31, modality="visite")
    assert (await book(client, territory, first)).status_code == 201
    held = (await book(client, territory, second)).json()
    r = await client.post(
        f"/v1/bookings/{held['id']}/cancel", json={"reason": "x"}, headers=territory.regulator
    )
    assert r.status_code == 200, r.text
    start = datetime.combine(monday, datetime.min.time(), PARIS)
    r = await client.post(
        f"{path}/unavailabilities",
        json={"start": start.isoformat(), "end": (start + timedelta(days=1)).isoformat()},
        headers=territory.practice,
    )
    assert r.status_code == 201, r.text

    params = {"t": uuid.UUID(territory.id)}
    expected = (await session.execute(text(LOG_OFFER), params)).all()
    assert expected
    assert (await session.execute(text(ROLLED_OFFER), params)).all() == expected
    # What the trigger kept, statement after statement, is what a rebuild from the log gives.
    kept = [(await session.execute(text(q), params)).all() for q in ROLLUPS]
    assert [len(rows) > 0 for rows in kept] == [True, True, True]
    await rebuild_rollups(session)
    rebuilt = [(await session.execute(text(q), params)).all() for q in ROLLUPS]
    assert rebuilt == kept
    statuses = sorted(row.status for row in kept[1])
    assert statuses == ["booked", "cancelled"]
