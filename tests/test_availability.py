"""Publishing availability: rules, one-off slots, unavailabilities, materialisation."""

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.activity.models import ActivityEvent
from app.directory.models import ApiKey
from app.errors import Conflict
from app.scheduling.materialisation import materialize_all
from app.scheduling.models import AvailabilityRule, Slot
from app.scheduling.one_off_slots import create_one_off_slot
from app.scheduling.publication import create_rule
from app.scheduling.schemas import OneOffSlotIn, RuleIn
from app.security import digest
from tests.conftest import ADMIN_CALLER, assert_problem, create_gp

PARIS = ZoneInfo("Europe/Paris")


def rule(**over):
    return {
        "rrule": "FREQ=DAILY",
        "start_time": "08:00",
        "end_time": "12:00",
        "slot_minutes": 30,
        "modality": "cabinet",
        "visibility": "sas",
        "valid_from": date.today().isoformat(),
        **over,
    }


def future(hours: float) -> datetime:
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return (base + timedelta(hours=hours)).astimezone(PARIS)


async def slot_count(session, practitioner_id, **where):
    stmt = select(func.count()).select_from(Slot).where(Slot.practitioner_id == practitioner_id)
    for key, value in where.items():
        stmt = stmt.where(getattr(Slot, key) == value)
    return await session.scalar(stmt)


async def test_rule_creates_its_slots_at_once(client, territory, session):
    r = await client.post(
        f"/v1/practitioners/{territory.practitioner_id}/availability-rules",
        json=rule(),
        headers=territory.practice,
    )
    assert r.status_code == 201, r.text
    created = r.json()["slots"]["created"]
    # 8 slots a day over the 14-day horizon, less today's that have passed.
    assert 13 * 8 <= created <= 15 * 8
    assert await slot_count(session, territory.practitioner_id) == created


async def test_rule_slots_are_at_local_wall_clock_time(client, territory):
    path = f"/v1/practitioners/{territory.practitioner_id}"
    await client.post(f"{path}/availability-rules", json=rule(), headers=territory.practice)
    slots = (await client.get(f"{path}/slots", headers=territory.practice)).json()
    assert slots
    for s in slots:
        start = datetime.fromisoformat(s["start"])
        assert start.utcoffset() == start.astimezone(PARIS).utcoffset()
        assert 8 <= start.hour < 12 and start.minute in (0, 30)


async def test_rule_that_overlaps_an_existing_slot_is_a_409_and_creates_nothing(
    client, territory, session
):
    path = f"/v1/practitioners/{territory.practitioner_id}"
    tomorrow_9 = datetime.combine(date.today() + timedelta(days=1), datetime.min.time()).replace(
        hour=9, minute=10, tzinfo=PARIS
    )
    r = await client.post(
        f"{path}/slots",
        json={
            "start": tomorrow_9.isoformat(),
            "end": (tomorrow_9 + timedelta(minutes=20)).isoformat(),
            "modality": "cabinet",
            "visibility": "sas",
        },
        headers=territory.practice,
    )
    assert r.status_code == 201, r.text
    r = await client.post(f"{path}/availability-rules", json=rule(), headers=territory.practice)
    body = assert_problem(r, 409)
    assert body["overlapping"][0]["slot_id"]
    assert await slot_count(session, territory.practitioner_id) == 1
    assert (await client.get(f"{path}/availability-rules", headers=territory.practice)).json() == []


async def test_overlapping_one_off_slot_is_a_409(client, territory):
    path = f"/v1/practitioners/{territory.practitioner_id}/slots"
    start = future(30)
    body = {
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=30)).isoformat(),
        "modality": "cabinet",
        "visibility": "sas",
    }
    assert (await client.post(path, json=body, headers=territory.practice)).status_code == 201
    shifted = {
        **body,
        "start": (start + timedelta(minutes=15)).isoformat(),
        "end": (start + timedelta(minutes=45)).isoformat(),
    }
    assert_problem(await client.post(path, json=shifted, headers=territory.practice), 409)
    adjacent = {**body, "start": body["end"], "end": (start + timedelta(minutes=60)).isoformat()}
    assert (await client.post(path, json=adjacent, headers=territory.practice)).status_code == 201


async def test_one_off_slot_in_the_past_is_a_422(client, territory):
    start = future(-3)
    r = await client.post(
        f"/v1/practitioners/{territory.practitioner_id}/slots",
        json={
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
            "modality": "cabinet",
            "visibility": "sas",
        },
        headers=territory.practice,
    )
    assert_problem(r, 422)


async def test_timestamp_without_offset_is_a_422(client, territory):
    r = await client.post(
        f"/v1/practitioners/{territory.practitioner_id}/slots",
        json={
            "start": "2030-01-10T10:00:00",
            "end": "2030-01-10T10:30:00",
            "modality": "cabinet",
            "visibility": "sas",
        },
        headers=territory.practice,
    )
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["start"]


async def test_rule_validation_errors_name_the_field(client, territory):
    path = f"/v1/practitioners/{territory.practitioner_id}/availability-rules"
    cases = {
        "rrule": rule(rrule="FREQ=SOMETIMES"),
        "slot_minutes": rule(slot_minutes=25),
        "valid_until": rule(valid_until="2000-01-01"),
        "modality": rule(modality="drive"),
    }
    for field, body in cases.items():
        r = await client.post(path, json=body, headers=territory.practice)
        problem = assert_problem(r, 422)
        assert field in problem["errors"][0]["loc"], (field, problem)


async def test_rrule_with_dtstart_is_refused(client, territory):
    r = await client.post(
        f"/v1/practitioners/{territory.practitioner_id}/availability-rules",
        json=rule(rrule="DTSTART:20260101T080000\nRRULE:FREQ=DAILY"),
        headers=territory.practice,
    )
    assert "rrule" in assert_problem(r, 422)["errors"][0]["loc"]


async def test_rule_creating_too_many_slots_is_refused(client, territory):
    r = await client.post(
        f"/v1/practitioners/{territory.practitioner_id}/availability-rules",
        json=rule(start_time="00:00", end_time="00:00", slot_minutes=5),
        headers=territory.practice,
    )
    assert "rrule" in assert_problem(r, 422)["errors"][0]["loc"]


async def test_editing_a_rule_replaces_free_slots(client, territory, session):
    path = f"/v1/practitioners/{territory.practitioner_id}/availability-rules"
    created = (await client.post(path, json=rule(), headers=territory.practice)).json()
    r = await client.patch(
        f"{path}/{created['id']}", json={"slot_minutes": 60}, headers=territory.practice
    )
    assert r.status_code == 200, r.text
    counts = r.json()["slots"]
    assert counts["removed"] == created["slots"]["created"]
    assert counts["created"] * 2 in range(counts["removed"] - 2, counts["removed"] + 3)
    assert await slot_count(session, territory.practitioner_id) == counts["created"]


async def test_editing_or_deleting_a_rule_never_touches_booked_or_held_slots(
    client, territory, session
):
    path = f"/v1/practitioners/{territory.practitioner_id}/availability-rules"
    created = (await client.post(path, json=rule(), headers=territory.practice)).json()
    slots = list(
        (
            await session.scalars(
                select(Slot).where(Slot.rule_id == created["id"]).order_by(Slot.start).limit(2)
            )
        ).all()
    )
    slots[0].status = "booked"
    slots[1].status, slots[1].hold_expires_at = "held", datetime.now(UTC) + timedelta(minutes=5)
    await session.commit()
    r = await client.patch(
        f"{path}/{created['id']}", json={"slot_minutes": 60}, headers=territory.practice
    )
    assert r.status_code == 200, r.text
    assert r.json()["slots"]["kept"] == 2
    r = await client.delete(f"{path}/{created['id']}", headers=territory.practice)
    assert r.status_code == 200 and r.json()["kept"] == 2
    remaining = (
        await session.scalars(
            select(Slot.status).where(Slot.practitioner_id == slots[0].practitioner_id)
        )
    ).all()
    assert sorted(remaining) == ["booked", "held"]


async def test_unavailability_makes_free_slots_unavailable_and_reports_bookings(
    client, territory, session
):
    path = f"/v1/practitioners/{territory.practitioner_id}"
    await client.post(f"{path}/availability-rules", json=rule(), headers=territory.practice)
    booked = await session.scalar(
        select(Slot).where(Slot.practitioner_id == territory.practitioner_id).order_by(Slot.start)
    )
    booked.status = "booked"
    await session.commit()
    start = booked.start - timedelta(hours=1)
    r = await client.post(
        f"{path}/unavailabilities",
        json={
            "start": start.isoformat(),
            "end": (start + timedelta(days=2)).isoformat(),
            "reason": "congés",
        },
        headers=territory.practice,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["slots_made_unavailable"] >= 8
    assert [c["slot_id"] for c in body["conflicts"]] == [str(booked.id)]
    # Lifting it frees the slots again.
    r = await client.delete(f"{path}/unavailabilities/{body['id']}", headers=territory.practice)
    assert r.status_code == 204
    assert await slot_count(session, territory.practitioner_id, status="unavailable") == 0


async def test_materialisation_job_extends_and_twice_changes_nothing(client, territory, session):
    path = f"/v1/practitioners/{territory.practitioner_id}/availability-rules"
    await client.post(path, json=rule(), headers=territory.practice)
    before = await slot_count(session, territory.practitioner_id)
    later = datetime.now(UTC) + timedelta(days=3)
    await materialize_all(session, now=later)
    assert await slot_count(session, territory.practitioner_id) == before + 3 * 8
    await materialize_all(session, now=later)
    assert await slot_count(session, territory.practitioner_id) == before + 3 * 8


async def test_materialised_slots_inside_an_unavailability_are_unavailable(
    client, territory, session
):
    path = f"/v1/practitioners/{territory.practitioner_id}"
    await client.post(f"{path}/availability-rules", json=rule(), headers=territory.practice)
    far = datetime.now(UTC) + timedelta(days=15)
    await client.post(
        f"{path}/unavailabilities",
        json={"start": far.isoformat(), "end": (far + timedelta(days=3)).isoformat()},
        headers=territory.practice,
    )
    await materialize_all(session, now=datetime.now(UTC) + timedelta(days=4))
    assert await slot_count(session, territory.practitioner_id, status="unavailable") > 0


async def test_other_practice_cannot_publish_for_this_practitioner(
    client, territory, other_territory
):
    r = await client.post(
        f"/v1/practitioners/{territory.practitioner_id}/availability-rules",
        json=rule(),
        headers=other_territory.practice,
    )
    assert_problem(r, 404)


async def test_regulator_cannot_publish(client, territory):
    r = await client.post(
        f"/v1/practitioners/{territory.practitioner_id}/availability-rules",
        json=rule(),
        headers=territory.regulator,
    )
    assert_problem(r, 403)


async def test_dst_change_keeps_local_wall_clock_time(client, territory, session, clock):
    """17:00–19:00 stays 17:00 in Paris on both sides of the 28 March 2027 change (the
    service's clock a few days before: the test holds on any date)."""
    clock.set(datetime(2027, 3, 24, tzinfo=UTC))
    path = f"/v1/practitioners/{territory.practitioner_id}"
    r = await client.post(
        f"{path}/availability-rules",
        json=rule(
            start_time="17:00",
            end_time="19:00",
            slot_minutes=60,
            valid_from="2027-03-25",
            valid_until="2027-03-31",
        ),
        headers=territory.practice,
    )
    assert r.status_code == 201, r.text
    await materialize_all(session, now=datetime(2027, 3, 24, tzinfo=UTC))
    slots = (
        await client.get(
            f"{path}/slots",
            params={"from": "2027-03-25T00:00:00+01:00", "to": "2027-04-01T00:00:00+02:00"},
            headers=territory.practice,
        )
    ).json()
    starts = [
        s["start"] for s in slots if s["start"].endswith(("17:00:00+01:00", "17:00:00+02:00"))
    ]
    assert "2027-03-27T17:00:00+01:00" in starts
    assert "2027-03-29T17:00:00+02:00" in starts
    assert len(slots) == 14


async def test_overnight_period_on_the_night_clocks_go_back_has_13_hours(
    client, territory, session, clock
):
    clock.set(datetime(2027, 10, 29, tzinfo=UTC))
    path = f"/v1/practitioners/{territory.practitioner_id}"
    r = await client.post(
        f"{path}/availability-rules",
        json=rule(
            rrule="FREQ=WEEKLY;BYDAY=SA",
            start_time="20:00",
            end_time="08:00",
            slot_minutes=60,
            valid_from="2027-10-30",
            valid_until="2027-10-30",
        ),
        headers=territory.practice,
    )
    assert r.status_code == 201, r.text
    await materialize_all(session, now=datetime(2027, 10, 29, tzinfo=UTC))
    assert await slot_count(session, territory.practitioner_id) == 13


async def test_overseas_zone_rules_use_local_time(client, world, admin):
    from tests.conftest import make_territory

    reunion = await make_territory(
        client, world, admin, name="CPTS Sud", timezone="Indian/Reunion", department="974"
    )
    path = f"/v1/practitioners/{reunion.practitioner_id}"
    await client.post(f"{path}/availability-rules", json=rule(), headers=reunion.practice)
    slots = (await client.get(f"{path}/slots", headers=reunion.practice)).json()
    assert slots and all(s["start"].endswith("+04:00") for s in slots)
    assert {s["start"][11:16] for s in slots} <= {
        f"{h:02d}:{m}" for h in range(8, 12) for m in ("00", "30")
    }


async def test_a_slot_cannot_carry_another_territory_than_its_practitioners(session):
    """The search's denormalised territory is held by the (practitioner, territory) key."""
    gp = await create_gp(session, "CPTS du slot")
    elsewhere = await create_gp(session, "CPTS d'ailleurs")
    start = datetime.now(UTC) + timedelta(days=1)

    def slot(territory_id):
        return Slot(
            practitioner_id=gp.id,
            territory_id=territory_id,
            source="manual",
            start=start,
            end=start + timedelta(minutes=20),
            modality="cabinet",
            visibility="sas",
            status="free",
        )

    with pytest.raises(IntegrityError, match="fk_slot_practitioner_territory"):
        async with session.begin_nested():
            session.add(slot(elsewhere.territory_id))
    session.add(slot(gp.territory_id))
    await session.flush()
    assert await slot_count(session, gp.id) == 1


def one_off(start: datetime, minutes: int = 30) -> dict[str, str]:
    return {
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=minutes)).isoformat(),
        "modality": "cabinet",
        "visibility": "sas",
    }


async def _events(session, practitioner_id):
    """The publication events of a practitioner, in order."""
    rows = await session.scalars(
        select(ActivityEvent)
        .where(
            ActivityEvent.practitioner_id == uuid.UUID(practitioner_id),
            ActivityEvent.type.in_(("slots.offered", "rule.created")),
        )
        .order_by(ActivityEvent.id)
    )
    return rows.all()


async def _key_id(session, headers):
    token = headers["Authorization"].removeprefix("Bearer ")
    return await session.scalar(select(ApiKey.id).where(ApiKey.digest == digest(token)))


async def test_a_one_off_slot_answers_as_the_agenda_shows_it(client, territory):
    path = f"/v1/practitioners/{territory.practitioner_id}/slots"
    start = future(30).astimezone(UTC)  # any offset in, the territory's out
    r = await client.post(path, json=one_off(start), headers=territory.practice)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["start"].endswith(("+01:00", "+02:00")) and body["rule_id"] is None
    assert (body["source"], body["status"]) == ("manual", "free")
    agenda = (await client.get(path, headers=territory.practice)).json()
    assert agenda == [body]


async def test_a_one_off_slot_records_its_offer_by_local_day(client, territory, session):
    start = future(30)
    r = await client.post(
        f"/v1/practitioners/{territory.practitioner_id}/slots",
        json=one_off(start, 45),
        headers=territory.practice,
    )
    assert r.status_code == 201, r.text
    [event] = await _events(session, territory.practitioner_id)
    assert (event.type, str(event.subject_id), str(event.territory_id)) == (
        "slots.offered",
        r.json()["id"],
        territory.id,
    )
    assert event.actor_key_id == await _key_id(session, territory.practice)
    assert event.data == {
        "modality": "cabinet",
        "visibility": "sas",
        "days": {start.date().isoformat(): {"slots": 1, "minutes": 45}},
    }


async def test_a_one_off_slot_inside_an_unavailability_is_a_409_and_creates_nothing(
    client, territory, session
):
    path = f"/v1/practitioners/{territory.practitioner_id}"
    start = future(30)
    r = await client.post(
        f"{path}/unavailabilities",
        json={"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()},
        headers=territory.practice,
    )
    assert r.status_code == 201, r.text
    body = assert_problem(
        await client.post(
            f"{path}/slots", json=one_off(start + timedelta(hours=1)), headers=territory.practice
        ),
        409,
    )
    assert "unavailable" in body["detail"] and "overlapping" not in body
    assert await slot_count(session, territory.practitioner_id) == 0
    assert [e.type for e in await _events(session, territory.practitioner_id)] == []


async def test_an_overlapping_one_off_slot_names_the_slot_in_its_way(client, territory, session):
    path = f"/v1/practitioners/{territory.practitioner_id}/slots"
    start = future(30)
    first = (await client.post(path, json=one_off(start), headers=territory.practice)).json()
    r = await client.post(
        path, json=one_off(start + timedelta(minutes=10)), headers=territory.practice
    )
    body = assert_problem(r, 409)
    assert body["overlapping"] == [
        {"slot_id": first["id"], "start": first["start"], "end": first["end"], "status": "free"}
    ]
    assert len(await _events(session, territory.practitioner_id)) == 1


async def test_a_refused_one_off_slot_leaves_the_transaction_usable(session):
    gp = await create_gp(session, "CPTS du créneau refusé")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)

    def body(minutes: int) -> OneOffSlotIn:
        return OneOffSlotIn(
            start=start + timedelta(minutes=minutes),
            end=start + timedelta(minutes=minutes + 30),
            modality="cabinet",
            visibility="sas",
        )

    await create_one_off_slot(session, ADMIN_CALLER, gp.id, body(0))
    with pytest.raises(Conflict):
        await create_one_off_slot(session, ADMIN_CALLER, gp.id, body(15))
    await create_one_off_slot(session, ADMIN_CALLER, gp.id, body(30))
    await session.flush()
    assert await slot_count(session, gp.id) == 2


async def test_publishing_elsewhere_is_a_404_and_without_the_role_a_403(
    client, territory, other_territory
):
    path = f"/v1/practitioners/{territory.practitioner_id}"
    slot = one_off(future(30))
    for key in (other_territory.coordinator, other_territory.practice):
        assert_problem(await client.post(f"{path}/slots", json=slot, headers=key), 404)
        assert_problem(
            await client.post(f"{path}/availability-rules", json=rule(), headers=key), 404
        )
    for key in (territory.regulator, territory.dashboard):
        assert_problem(await client.post(f"{path}/slots", json=slot, headers=key), 403)


async def test_a_new_rule_answers_as_it_reads_afterwards(client, territory):
    path = f"/v1/practitioners/{territory.practitioner_id}/availability-rules"
    r = await client.post(path, json=rule(valid_until=None), headers=territory.coordinator)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["created_at"].endswith(("+01:00", "+02:00"))
    assert body["materialized_until"].endswith(("+01:00", "+02:00"))
    assert body["slots"]["removed"] == body["slots"]["kept"] == 0
    read = await client.get(f"{path}/{body['id']}", headers=territory.coordinator)
    assert read.json() == {k: v for k, v in body.items() if k != "slots"}


async def test_a_new_rule_records_its_offer_then_its_creation(client, territory, session):
    path = f"/v1/practitioners/{territory.practitioner_id}"
    tomorrow = date.today() + timedelta(days=1)
    r = await client.post(
        f"{path}/unavailabilities",
        json={
            "start": datetime.combine(tomorrow, datetime.min.time(), PARIS).isoformat(),
            "end": datetime.combine(tomorrow, datetime.max.time(), PARIS).isoformat(),
        },
        headers=territory.practice,
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        f"{path}/availability-rules",
        json=rule(
            valid_from=tomorrow.isoformat(), valid_until=(tomorrow + timedelta(days=2)).isoformat()
        ),
        headers=territory.practice,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["slots"]["created"] == 24
    offered, created = await _events(session, territory.practitioner_id)
    assert (offered.type, offered.actor_key_id, str(offered.subject_id)) == (
        "slots.offered",
        None,
        body["id"],
    )
    assert offered.data == {
        "modality": "cabinet",
        "visibility": "sas",
        "days": {
            (tomorrow + timedelta(days=n)).isoformat(): {"slots": 8, "minutes": 240} for n in (1, 2)
        },
    }
    assert (created.type, str(created.subject_id), str(created.territory_id)) == (
        "rule.created",
        body["id"],
        territory.id,
    )
    assert created.actor_key_id == await _key_id(session, territory.practice)
    assert created.data == {"modality": "cabinet", "visibility": "sas", "slots": 24}


async def test_a_rule_beyond_the_horizon_creates_no_slot_and_records_no_offer(
    client, territory, session
):
    later = (date.today() + timedelta(days=40)).isoformat()
    r = await client.post(
        f"/v1/practitioners/{territory.practitioner_id}/availability-rules",
        json=rule(valid_from=later),
        headers=territory.practice,
    )
    assert r.status_code == 201, r.text
    assert r.json()["slots"]["created"] == 0 and r.json()["materialized_until"]
    events = await _events(session, territory.practitioner_id)
    assert [(e.type, e.data["slots"]) for e in events] == [("rule.created", 0)]


async def test_a_refused_rule_records_nothing_and_leaves_the_transaction_usable(session):
    gp = await create_gp(session, "CPTS de la règle refusée")
    start = datetime.combine(date.today() + timedelta(days=1), datetime.min.time(), PARIS)
    await create_one_off_slot(
        session,
        ADMIN_CALLER,
        gp.id,
        OneOffSlotIn(
            start=start.replace(hour=9, minute=10),
            end=start.replace(hour=9, minute=30),
            modality="cabinet",
            visibility="sas",
        ),
    )
    with pytest.raises(Conflict):
        await create_rule(session, ADMIN_CALLER, gp.id, RuleIn.model_validate(rule()))
    await session.flush()
    assert await slot_count(session, gp.id) == 1
    rules = await session.scalar(
        select(func.count())
        .select_from(AvailabilityRule)
        .where(AvailabilityRule.practitioner_id == gp.id)
    )
    assert rules == 0
    assert [e.type for e in await _events(session, str(gp.id))] == ["slots.offered"]
