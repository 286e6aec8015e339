"""Booking through the API: hold, book, confirm, cancel, outcome, surnuméraire, roles."""

import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert, select, update

from app.activity.models import ActivityEvent
from app.directory.models import ApiKey
from app.idempotency import IdempotencyRecord
from app.scheduling.booking_models import Booking
from app.scheduling.booking_outcomes import expire_holds
from app.scheduling.models import Slot
from app.security import digest
from tests.conftest import assert_problem
from tests.test_slot_search import add_slot

PATIENT = {
    "family_name": "Lemoine",
    "given_name": "Jeanne",
    "birth_date": "1948-05-02",
    "phone": "06 12 34 56 78",
}


def idem() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def book(client, t, slot_id, *, hold=False, key=None, **extra):
    body = {"slot_id": slot_id, **({"hold": True} if hold else {"patient": PATIENT}), **extra}
    return await client.post("/v1/bookings", json=body, headers={**t.regulator, **(key or idem())})


async def test_booking_a_free_slot(client, territory):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    r = await book(client, territory, slot_id, sas_case_ref="SAS-15-0001")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "booked"
    assert body["slot"]["id"] == slot_id
    assert body["patient"]["phone"] == "+33612345678"
    assert body["practitioner"]["id"] == territory.practitioner_id
    assert body["created_at"].endswith(("+01:00", "+02:00"))
    search = (await client.get("/v1/slots", headers=territory.regulator)).json()
    assert slot_id not in [s["id"] for s in search["items"]]


async def test_second_booking_of_a_slot_is_a_409_slot_unavailable(client, territory):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    assert (await book(client, territory, slot_id)).status_code == 201
    problem = assert_problem(await book(client, territory, slot_id), 409, "/slot-unavailable")
    assert "booked" in problem["detail"]


async def test_booking_needs_an_idempotency_key(client, territory):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    r = await client.post(
        "/v1/bookings",
        json={"slot_id": slot_id, "patient": PATIENT},
        headers=territory.regulator,
    )
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["header", "Idempotency-Key"]


async def test_same_key_and_body_replays_the_first_response(client, territory, session):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    key = idem()
    first = await book(client, territory, slot_id, key=key)
    again = await book(client, territory, slot_id, key=key)
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    count = (await session.scalars(select(Booking).where(Booking.slot_id == slot_id))).all()
    assert len(count) == 1


async def test_same_key_with_another_body_is_a_422(client, territory):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    key = idem()
    assert (await book(client, territory, slot_id, key=key)).status_code == 201
    r = await book(client, territory, slot_id, key=key, reason="fièvre")
    assert_problem(r, 422)


async def test_hold_then_confirm(client, territory):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    r = await book(client, territory, slot_id, hold=True)
    assert r.status_code == 201, r.text
    held = r.json()
    assert held["status"] == "held" and held["hold_expires_at"] and held["patient"] is None
    search = (await client.get("/v1/slots", headers=territory.regulator)).json()
    assert slot_id not in [s["id"] for s in search["items"]]
    r = await client.post(
        f"/v1/bookings/{held['id']}/confirm",
        json={"patient": PATIENT},
        headers=territory.regulator,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "booked" and r.json()["hold_expires_at"] is None


async def test_confirm_without_a_body_when_the_hold_has_the_patient(client, territory):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    held = (await book(client, territory, slot_id, hold=True, patient=PATIENT)).json()
    assert held["status"] == "held"
    r = await client.post(f"/v1/bookings/{held['id']}/confirm", headers=territory.regulator)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "booked"
    assert r.json()["patient"]["family_name"] == PATIENT["family_name"]


async def test_confirm_may_correct_the_patient_given_with_the_hold(client, territory):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    held = (await book(client, territory, slot_id, hold=True, patient=PATIENT)).json()
    r = await client.post(
        f"/v1/bookings/{held['id']}/confirm",
        json={"patient": {**PATIENT, "given_name": "Jeannine"}},
        headers=territory.regulator,
    )
    assert r.status_code == 200, r.text
    assert r.json()["patient"]["given_name"] == "Jeannine"


async def test_confirm_without_a_patient_anywhere_is_a_422_and_keeps_the_hold(client, territory):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    held = (await book(client, territory, slot_id, hold=True)).json()
    for kwargs in ({}, {"json": {"sas_case_ref": "SAS15-9"}}):
        r = await client.post(
            f"/v1/bookings/{held['id']}/confirm", headers=territory.regulator, **kwargs
        )
        problem = assert_problem(r, 422)
        assert problem["errors"][0]["loc"] == ["body", "patient"]
    r = await client.get(f"/v1/bookings/{held['id']}", headers=territory.regulator)
    assert r.json()["status"] == "held"


async def _expire(session, booking_id):
    booking = await session.get(Booking, uuid.UUID(booking_id))
    past = datetime.now(UTC) - timedelta(seconds=1)
    booking.hold_expires_at = past
    slot = await session.get(Slot, booking.slot_id)
    slot.hold_expires_at = past
    await session.commit()


async def test_confirm_after_expiry_is_a_409(client, territory, session):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    held = (await book(client, territory, slot_id, hold=True)).json()
    await _expire(session, held["id"])
    r = await client.post(
        f"/v1/bookings/{held['id']}/confirm",
        json={"patient": PATIENT},
        headers=territory.regulator,
    )
    assert_problem(r, 409, "/slot-unavailable")


async def test_expired_hold_is_bookable_at_once_by_anyone(client, territory, session):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    held = (await book(client, territory, slot_id, hold=True)).json()
    await _expire(session, held["id"])
    search = (await client.get("/v1/slots", headers=territory.regulator)).json()
    assert slot_id in [s["id"] for s in search["items"]]
    r = await book(client, territory, slot_id)
    assert r.status_code == 201, r.text
    old = await session.get(Booking, uuid.UUID(held["id"]))
    await session.refresh(old)
    assert old.status == "expired"


async def test_taking_over_an_expired_hold_records_its_expiry_before_the_booking(
    client, territory, session
):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    held = (await book(client, territory, slot_id, hold=True)).json()
    await _expire(session, held["id"])
    booked = (await book(client, territory, slot_id)).json()
    events = (
        await session.scalars(
            select(ActivityEvent)
            .where(ActivityEvent.subject_id.in_([uuid.UUID(held["id"]), uuid.UUID(booked["id"])]))
            .order_by(ActivityEvent.id)
        )
    ).all()
    assert [(e.type, str(e.subject_id)) for e in events] == [
        ("booking.held", held["id"]),
        ("hold.expired", held["id"]),
        ("booking.booked", booked["id"]),
    ]


async def test_a_key_committed_without_its_response_is_not_replayed(client, territory, session):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    key = idem()
    token = territory.regulator["Authorization"].removeprefix("Bearer ")
    api_key_id = await session.scalar(select(ApiKey.id).where(ApiKey.digest == digest(token)))
    await session.execute(
        insert(IdempotencyRecord).values(
            api_key_id=api_key_id,
            key=key["Idempotency-Key"],
            endpoint="POST /v1/bookings",
            body_hash="0" * 64,
            status_code=0,
            response=None,
        )
    )
    await session.commit()
    r = await book(client, territory, slot_id, key=key)
    assert r.status_code == 201, r.text
    assert "idempotent-replayed" not in r.headers


async def test_an_idempotency_key_past_its_retention_starts_afresh(client, territory, session):
    first_slot = await add_slot(client, territory, territory.practitioner_id, 3)
    second_slot = await add_slot(client, territory, territory.practitioner_id, 4)
    key = idem()
    first = (await book(client, territory, first_slot, key=key)).json()
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.key == key["Idempotency-Key"])
        .values(created_at=datetime.now(UTC) - timedelta(hours=25))
    )
    await session.commit()
    r = await book(client, territory, second_slot, key=key)
    assert r.status_code == 201, r.text
    assert "idempotent-replayed" not in r.headers
    assert r.json()["id"] != first["id"] and r.json()["slot"]["id"] == second_slot
    again = await book(client, territory, second_slot, key=key)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == r.json()


async def test_hold_expiry_job_releases_the_slot(client, territory, session):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    held = (await book(client, territory, slot_id, hold=True)).json()
    await _expire(session, held["id"])
    assert (await expire_holds(session))["holds_expired"] >= 1
    slot = await session.get(Slot, uuid.UUID(slot_id))
    await session.refresh(slot)
    assert slot.status == "free"
    again = await expire_holds(session)
    assert again["holds_expired"] == 0


async def test_cancel_frees_the_slot_and_it_can_be_rebooked(client, territory):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    booking = (await book(client, territory, slot_id)).json()
    r = await client.post(
        f"/v1/bookings/{booking['id']}/cancel",
        json={"reason": "patient guéri"},
        headers=territory.practice,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert (await book(client, territory, slot_id)).status_code == 201
    r = await client.post(
        f"/v1/bookings/{booking['id']}/cancel",
        json={"reason": "encore"},
        headers=territory.regulator,
    )
    assert_problem(r, 409)


async def test_outcome_before_start_is_refused_and_after_start_recorded(client, territory, session):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    booking = (await book(client, territory, slot_id)).json()
    path = f"/v1/bookings/{booking['id']}/outcome"
    assert_problem(
        await client.post(path, json={"outcome": "honored"}, headers=territory.practice), 409
    )
    row = await session.get(Booking, uuid.UUID(booking["id"]))
    row.start -= timedelta(hours=4)
    row.end -= timedelta(hours=4)
    await session.commit()
    r = await client.post(path, json={"outcome": "no_show"}, headers=territory.practice)
    assert r.status_code == 200 and r.json()["status"] == "no_show"
    assert_problem(
        await client.post(path, json={"outcome": "honored"}, headers=territory.regulator), 403
    )


async def test_regulator_cannot_book_a_cpts_only_slot(client, territory):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3, visibility="cpts")
    assert_problem(await book(client, territory, slot_id), 404)


async def test_regulator_cannot_book_in_an_unlinked_territory(client, territory, other_territory):
    slot_id = await add_slot(client, other_territory, other_territory.practitioner_id, 3)
    assert_problem(await book(client, territory, slot_id), 404)


async def test_booking_visibility_by_role(client, territory, other_territory, admin):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    booking = (await book(client, territory, slot_id)).json()
    path = f"/v1/bookings/{booking['id']}"
    for key in (territory.regulator, territory.practice, territory.coordinator):
        r = await client.get(path, headers=key)
        assert r.status_code == 200 and r.json()["patient"]["family_name"] == "Lemoine"
    for key in (other_territory.regulator, other_territory.practice, other_territory.coordinator):
        assert_problem(await client.get(path, headers=key), 404)
    assert_problem(await client.get(path, headers=territory.dashboard), 403)
    assert (await client.get(path, headers=admin)).json()["patient"] is None
    listed = (await client.get("/v1/bookings", headers=other_territory.coordinator)).json()
    assert listed["items"] == []


async def test_practice_lists_bookings_on_its_slots(client, territory):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    await book(client, territory, slot_id)
    r = await client.get("/v1/bookings?status=booked", headers=territory.practice)
    assert [b["slot"]["id"] for b in r.json()["items"]] == [slot_id]


async def test_patient_validation(client, territory, session):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    cases = {
        "birth_date": {**PATIENT, "birth_date": tomorrow},
        "phone": {**PATIENT, "phone": "12345"},
        "ins": {**PATIENT, "ins": "180017512345699"},
    }
    for field, patient in cases.items():
        r = await client.post(
            "/v1/bookings",
            json={"slot_id": slot_id, "patient": patient},
            headers={**territory.regulator, **idem()},
        )
        assert assert_problem(r, 422)["errors"][0]["loc"] == ["patient", field], field
    assert (await session.scalars(select(Booking).where(Booking.slot_id == slot_id))).all() == []


async def test_valid_ins_is_accepted(client, territory):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    nir = "1800175123456"
    ins = nir + f"{97 - int(nir) % 97:02d}"
    r = await client.post(
        "/v1/bookings",
        json={"slot_id": slot_id, "patient": {**PATIENT, "ins": ins}},
        headers={**territory.regulator, **idem()},
    )
    assert r.status_code == 201, r.text


async def test_activity_events_carry_no_patient_data(client, territory, session):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    booking = (await book(client, territory, slot_id)).json()
    await client.post(
        f"/v1/bookings/{booking['id']}/cancel", json={"reason": "x"}, headers=territory.regulator
    )
    events = (
        await session.scalars(
            select(ActivityEvent)
            .where(ActivityEvent.subject_id == uuid.UUID(booking["id"]))
            .order_by(ActivityEvent.id)
        )
    ).all()
    assert [e.type for e in events] == ["booking.booked", "booking.cancelled"]
    dumped = str([(e.type, e.data) for e in events])
    for value in ("Lemoine", "Jeanne", "1948", "+3361"):
        assert value not in dumped


async def _overbooking_gp(client, territory, cap=1, **settings):
    r = await client.patch(
        f"/v1/practitioners/{territory.practitioner_id}",
        json={"accepts_overbooking": True, "overbooking_daily_cap": cap, **settings},
        headers=territory.coordinator,
    )
    assert r.status_code == 200, r.text


async def overbook(client, t, start):
    return await client.post(
        "/v1/bookings/overbook",
        json={"practitioner_id": t.practitioner_id, "start": start.isoformat(), "patient": PATIENT},
        headers={**t.regulator, **idem()},
    )


async def test_overbooking_needs_a_practitioner_who_accepts_it(client, territory):
    start = datetime.now(UTC) + timedelta(days=1)
    assert_problem(await overbook(client, territory, start), 409)


async def test_overbooking_cap_is_per_local_day(client, territory, clock):
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    clock.set(datetime(2027, 1, 13, 10, 0, tzinfo=paris))
    # Surnuméraires around the clock, so that the cap is what refuses.
    await _overbooking_gp(
        client, territory, cap=1, overbooking_start_time="00:00", overbooking_end_time="00:00"
    )
    day = date(2027, 1, 14)
    late = datetime(day.year, day.month, day.day, 23, 30, tzinfo=paris)
    r = await overbook(client, territory, late)
    assert r.status_code == 201, r.text
    assert r.json()["overbooked"] is True and r.json()["slot"] is None
    problem = assert_problem(await overbook(client, territory, late - timedelta(hours=3)), 409)
    assert (problem["cap"], problem["day"]) == (1, day.isoformat())
    # 00:30 local the next day is another day, though it is the same UTC date as 23:30 +01:00.
    assert (await overbook(client, territory, late + timedelta(hours=1))).status_code == 201


async def _key_id(session, headers):
    token = headers["Authorization"].removeprefix("Bearer ")
    return await session.scalar(select(ApiKey.id).where(ApiKey.digest == digest(token)))


async def test_the_cancel_answer_is_the_booking_as_it_reads_afterwards(client, territory):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    booking = (await book(client, territory, slot_id, sas_case_ref="SAS-15-0002")).json()
    r = await client.post(
        f"/v1/bookings/{booking['id']}/cancel",
        json={"reason": "patient rappelé"},
        headers=territory.practice,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "cancelled" and body["cancel_reason"] == "patient rappelé"
    assert body["cancelled_at"].endswith(("+01:00", "+02:00")) and body["patient"] is not None
    read = await client.get(f"/v1/bookings/{booking['id']}", headers=territory.practice)
    assert read.content == r.content


async def test_cancelling_a_hold_frees_its_slot(client, territory, session):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    held = (await book(client, territory, slot_id, hold=True)).json()
    r = await client.post(
        f"/v1/bookings/{held['id']}/cancel", json={"reason": "x"}, headers=territory.regulator
    )
    assert r.status_code == 200, r.text
    assert r.json()["hold_expires_at"] is None and r.json()["patient"] is None
    slot = await session.get(Slot, uuid.UUID(slot_id))
    assert (slot.status, slot.hold_expires_at) == ("free", None)


async def test_cancelling_a_started_booking_leaves_its_slot_as_it_was(client, territory, session):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    booking = (await book(client, territory, slot_id)).json()
    await session.execute(
        update(Slot)
        .where(Slot.id == uuid.UUID(slot_id))
        .values(start=Slot.start - timedelta(hours=4), end=Slot.end - timedelta(hours=4))
    )
    await session.commit()
    r = await client.post(
        f"/v1/bookings/{booking['id']}/cancel", json={"reason": "x"}, headers=territory.regulator
    )
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    slot = await session.get(Slot, uuid.UUID(slot_id))
    await session.refresh(slot)
    assert slot.status == "booked"


async def test_cancel_records_its_event_with_the_previous_status_and_the_role(
    client, territory, session
):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    held = (await book(client, territory, slot_id, hold=True)).json()
    await client.post(
        f"/v1/bookings/{held['id']}/cancel", json={"reason": "x"}, headers=territory.coordinator
    )
    event = await session.scalar(
        select(ActivityEvent).where(
            ActivityEvent.subject_id == uuid.UUID(held["id"]),
            ActivityEvent.type == "booking.cancelled",
        )
    )
    assert event is not None
    assert (str(event.territory_id), str(event.practitioner_id)) == (
        territory.id,
        territory.practitioner_id,
    )
    assert event.actor_key_id == await _key_id(session, territory.coordinator)
    start = datetime.fromisoformat(held["start"]).astimezone(UTC).isoformat()
    assert event.data == {
        "modality": "cabinet",
        "start": start,
        "overbooked": False,
        "was": "held",
        "by_role": "coordinator",
    }


async def test_cancel_outside_the_callers_scope_is_a_404_and_changes_nothing(
    client, territory, other_territory, session
):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    booking = (await book(client, territory, slot_id)).json()
    path = f"/v1/bookings/{booking['id']}/cancel"
    for key in (other_territory.coordinator, other_territory.practice, other_territory.regulator):
        assert_problem(await client.post(path, json={"reason": "x"}, headers=key), 404)
    assert_problem(await client.post(path, json={"reason": "x"}, headers=territory.dashboard), 403)
    row = await session.get(Booking, uuid.UUID(booking["id"]))
    assert row.status == "booked"
