"""Indicators computed from the activity log, on a scenario with known answers."""

import csv
import io
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from app.activity.models import ActivityEvent
from tests.conftest import assert_problem

PARIS = ZoneInfo("Europe/Paris")
A, B = uuid.uuid4(), uuid.uuid4()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def seed(session, territory_id):
    t = uuid.UUID(territory_id)

    def ev(when, type_, practitioner=None, **data):
        return {
            "at": at(when),
            "type": type_,
            "territory_id": t,
            "practitioner_id": practitioner,
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
        # 23:30 local on 31 March: a March booking.
        ev(
            "2027-03-31T23:30:00+02:00",
            "booking.booked",
            A,
            modality="cabinet",
            lead_minutes=30,
            start="2027-04-01T00:00:00+02:00",
        ),
        # 00:30 local on 1 April is still 31 March in UTC: an April booking.
        ev(
            "2027-04-01T00:30:00+02:00",
            "booking.booked",
            B,
            modality="visite",
            lead_minutes=3000,
            start="2027-04-03T10:00:00+02:00",
        ),
        ev(
            "2027-03-10T09:00:00+01:00",
            "booking.overbooked",
            A,
            modality="cabinet",
            lead_minutes=60,
            start="2027-03-10T10:00:00+01:00",
        ),
        ev("2027-04-05T09:00:00+02:00", "booking.cancelled", B, modality="visite", was="booked"),
        ev("2027-04-05T09:00:00+02:00", "booking.cancelled", B, modality="visite", was="held"),
        ev("2027-03-12T09:00:00+01:00", "booking.honored", A, modality="cabinet"),
        ev("2027-03-13T09:00:00+01:00", "booking.no_show", A, modality="cabinet"),
        ev("2027-01-05T09:00:00+01:00", "mt.capacity_set", A, capacity=3),
        ev("2027-02-01T09:00:00+01:00", "mt.registered", priority=2),
        ev("2027-03-15T09:00:00+01:00", "mt.registered", priority=0),
        ev("2027-03-20T09:00:00+01:00", "mt.registered", priority=1),
        ev("2027-03-18T09:00:00+01:00", "mt.attached", A, priority=2, waiting_days=45.0),
        ev("2027-04-02T09:00:00+02:00", "mt.withdrawn", priority=0, was="waiting"),
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
    assert (march["slots_offered"], march["hours_offered"], march["practitioners_offering"]) == (
        5,
        1.67,
        1,
    )
    assert (april["slots_offered"], april["hours_offered"]) == (3, 1.0)
    assert (
        march["slots_booked_by_sas"],
        march["booked_within_24h"],
        march["booked_within_48h"],
    ) == (1, 1, 1)
    assert (
        april["slots_booked_by_sas"],
        april["booked_within_24h"],
        april["booked_within_48h"],
    ) == (1, 0, 0)
    assert march["fill_rate"] == 0.0 and april["fill_rate"] == round(2 / 3, 4)
    assert march["overbooked"] == 1 and april["cancellations"] == 1
    assert march["no_show_rate"] == 0.5
    assert march["modality_share"]["cabinet"] == 1.0
    assert april["modality_share"]["visite"] == 1.0


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
        params={"from": "2027-02-01", "to": "2027-05-01", "granularity": "quarter"},
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
    assert [e["type"] for e in first["items"]] == ["booking.booked"] * 2
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
    SELECT territory_id, period_start, practitioner_id, slots, minutes FROM offer_period
    WHERE territory_id = :t AND granularity = 'w' ORDER BY 1, 2, 3
"""
LOG_BOOKINGS = """
    SELECT (e.at AT TIME ZONE 'Europe/Paris')::date, e.type, e.data->>'modality', count(*)
    FROM activity_event e WHERE e.territory_id = :t AND e.type LIKE 'booking.%'
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
ROLLED_BOOKINGS = """
    SELECT day, type, modality, sum(n) FROM booking_day WHERE territory_id = :t
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
LOG_SLOT_DAYS = """
    SELECT ((e.data->>'start')::timestamptz AT TIME ZONE 'Europe/Paris')::date, count(*)
    FROM activity_event e WHERE e.territory_id = :t AND e.type = 'booking.booked'
    GROUP BY 1 ORDER BY 1
"""
ROLLED_SLOT_DAYS = """
    SELECT day, sum(n) FROM booked_slot_day WHERE territory_id = :t GROUP BY 1 ORDER BY 1
"""


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
    for log, rolled in (
        (LOG_OFFER, ROLLED_OFFER),
        (LOG_BOOKINGS, ROLLED_BOOKINGS),
        (LOG_SLOT_DAYS, ROLLED_SLOT_DAYS),
    ):
        expected = (await session.execute(text(log), params)).all()
        assert expected, log
        assert (await session.execute(text(rolled), params)).all() == expected
