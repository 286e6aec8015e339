"""CPTS-internal slots (visibility `cpts`): searched and booked by the territory's practices
and its coordinator, never seen by the SAS's regulators nor the national platform, and never
counted as SAS bookings."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from app.activity.models import ActivityEvent
from app.outbox.models import OutboxMessage
from app.scheduling.booking_models import Booking
from tests.conftest import Territory, World, assert_problem, practice_body, practitioner_body
from tests.test_bookings import PATIENT, idem
from tests.test_slot_search import add_slot
from tests.test_webhooks import register


class Colleague:
    """A second practice of the territory, with its GP and its key."""

    practice_id: str
    practitioner_id: str
    key: dict[str, str]


async def colleague(
    client: httpx.AsyncClient, world: World, admin: dict[str, str], t: Territory
) -> Colleague:
    c = Colleague()
    body = practice_body(t.id, name="Cabinet du Lioran", commune_insee="15138")
    r = await client.post("/v1/practices", json=body, headers=admin)
    assert r.status_code == 201, r.text
    c.practice_id = r.json()["id"]
    r = await client.post(
        "/v1/practitioners",
        json=practitioner_body(c.practice_id, family_name="Roux"),
        headers=admin,
    )
    assert r.status_code == 201, r.text
    c.practitioner_id = r.json()["id"]
    c.key = await world.key("practice", practice_id=uuid.UUID(c.practice_id))
    return c


async def member_book(client, key, slot_id, *, hold=False, idem_key=None, **extra):
    body = {"slot_id": slot_id, **({"hold": True} if hold else {"patient": PATIENT}), **extra}
    return await client.post("/v1/bookings", json=body, headers={**key, **(idem_key or idem())})


async def found(client, key, **params) -> list[str]:
    r = await client.get("/v1/slots", params=params, headers=key)
    assert r.status_code == 200, r.text
    return [s["id"] for s in r.json()["items"]]


async def test_search_shows_cpts_slots_to_the_cpts_members_and_never_to_the_sas(client, territory):
    gp = territory.practitioner_id
    sas = await add_slot(client, territory, gp, 3)
    cpts = await add_slot(client, territory, gp, 4, visibility="cpts")
    public = await add_slot(client, territory, gp, 5, visibility="public")
    assert await found(client, territory.practice) == [sas, cpts, public]
    assert await found(client, territory.coordinator) == [sas, cpts, public]
    assert await found(client, territory.regulator) == [sas, public]


async def test_another_territory_neither_sees_nor_books_a_cpts_slot(
    client, territory, other_territory
):
    cpts = await add_slot(client, territory, territory.practitioner_id, 3, visibility="cpts")
    for key in (other_territory.practice, other_territory.coordinator):
        assert cpts not in await found(client, key)
        assert_problem(await member_book(client, key, cpts), 404)


async def test_a_regulator_gets_a_404_for_a_cpts_slot_hold_included(client, territory):
    cpts = await add_slot(client, territory, territory.practitioner_id, 3, visibility="cpts")
    headers = {**territory.regulator}
    assert_problem(await member_book(client, headers, cpts), 404)
    assert_problem(await member_book(client, headers, cpts, hold=True), 404)


async def test_a_practice_books_a_colleagues_cpts_slot_and_both_practices_see_it(
    client, world, admin, territory, session
):
    other = await colleague(client, world, admin, territory)
    cpts = await add_slot(client, territory, other.practitioner_id, 3, visibility="cpts")
    r = await member_book(client, territory.practice, cpts, reason="suture à revoir")
    assert r.status_code == 201, r.text
    booking = r.json()
    assert booking["status"] == "booked" and booking["regulator_id"] is None
    assert booking["practice"]["id"] == other.practice_id
    assert booking["patient"]["family_name"] == PATIENT["family_name"]
    row = await session.get(Booking, uuid.UUID(booking["id"]))
    assert row is not None and str(row.booked_by_practice_id) == territory.practice_id
    for key in (territory.practice, other.key, territory.coordinator):
        r = await client.get(f"/v1/bookings/{booking['id']}", headers=key)
        assert r.status_code == 200, r.text
    assert_problem(
        await client.get(f"/v1/bookings/{booking['id']}", headers=territory.regulator), 404
    )
    listed = (await client.get("/v1/bookings", headers=territory.regulator)).json()["items"]
    assert booking["id"] not in [b["id"] for b in listed]
    assert cpts not in await found(client, territory.practice)
    assert_problem(await member_book(client, other.key, cpts), 409, "/slot-unavailable")


async def test_the_coordinator_holds_then_confirms_a_cpts_slot_once_whatever_the_retries(
    client, territory, session
):
    cpts = await add_slot(client, territory, territory.practitioner_id, 3, visibility="cpts")
    key = idem()
    held = await member_book(client, territory.coordinator, cpts, hold=True, idem_key=key)
    assert held.status_code == 201, held.text
    again = await member_book(client, territory.coordinator, cpts, hold=True, idem_key=key)
    assert (again.status_code, again.json()) == (held.status_code, held.json())
    assert held.json()["status"] == "held" and held.json()["hold_expires_at"]
    booking_id = held.json()["id"]
    r = await client.post(
        f"/v1/bookings/{booking_id}/confirm",
        json={"patient": PATIENT},
        headers=territory.coordinator,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "booked"
    rows = (await session.scalars(select(Booking).where(Booking.slot_id == uuid.UUID(cpts)))).all()
    assert len(rows) == 1


async def test_the_cpts_members_do_not_book_the_slots_set_aside_for_the_sas(client, territory):
    sas = await add_slot(client, territory, territory.practitioner_id, 3)
    for key in (territory.practice, territory.coordinator):
        assert_problem(await member_book(client, key, sas), 403)
    public = await add_slot(client, territory, territory.practitioner_id, 4, visibility="public")
    assert (await member_book(client, territory.practice, public)).status_code == 201


async def test_a_sas_hold_is_not_confirmed_by_the_coordinator(client, territory):
    sas = await add_slot(client, territory, territory.practitioner_id, 3)
    held = await member_book(client, territory.regulator, sas, hold=True)
    assert held.status_code == 201, held.text
    r = await client.post(
        f"/v1/bookings/{held.json()['id']}/confirm",
        json={"patient": PATIENT},
        headers=territory.coordinator,
    )
    assert_problem(r, 403)


async def test_a_cpts_booking_has_no_sas_platform_operator(client, territory, operator):
    cpts = await add_slot(client, territory, territory.practitioner_id, 3, visibility="cpts")
    r = await member_book(client, territory.practice, cpts, operator=operator)
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "operator"]


async def test_the_booking_practice_cancels_and_the_slot_is_bookable_again(
    client, world, admin, territory
):
    other = await colleague(client, world, admin, territory)
    cpts = await add_slot(client, territory, other.practitioner_id, 3, visibility="cpts")
    booking = (await member_book(client, territory.practice, cpts)).json()
    r = await client.post(
        f"/v1/bookings/{booking['id']}/cancel",
        json={"reason": "le patient a trouvé ailleurs"},
        headers=territory.practice,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert cpts in await found(client, territory.coordinator)
    assert cpts not in await found(client, territory.regulator)


async def test_the_receiving_practice_records_the_outcome_not_the_booking_one(
    client, world, admin, territory, clock
):
    other = await colleague(client, world, admin, territory)
    cpts = await add_slot(client, territory, other.practitioner_id, 3, visibility="cpts")
    booking = (await member_book(client, territory.practice, cpts)).json()
    clock.advance(hours=4)
    path = f"/v1/bookings/{booking['id']}/outcome"
    assert_problem(
        await client.post(path, json={"outcome": "honored"}, headers=territory.practice), 403
    )
    r = await client.post(path, json={"outcome": "honored"}, headers=other.key)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "honored"


async def test_cpts_bookings_carry_their_activity_events_and_webhooks(
    client, world, admin, territory, session, monkeypatch
):
    from app.config import get_settings

    monkeypatch.setattr(get_settings(), "webhook_allow_insecure_urls", True)
    other = await colleague(client, world, admin, territory)
    booker = await register(client, territory.practice, "http://127.0.0.1:9/booker")
    receiving = await register(client, other.key, "http://127.0.0.1:9/receiving")
    sas_hook = await register(client, territory.regulator, "http://127.0.0.1:9/sas")
    cpts = await add_slot(client, territory, other.practitioner_id, 3, visibility="cpts")
    booking = (await member_book(client, territory.practice, cpts)).json()
    messages = (
        await session.scalars(
            select(OutboxMessage).where(OutboxMessage.event_type == "booking.booked")
        )
    ).all()
    endpoints = {str(m.endpoint_id) for m in messages}
    assert {booker["id"], receiving["id"]} <= endpoints
    assert sas_hook["id"] not in endpoints
    [event] = (
        await session.scalars(
            select(ActivityEvent).where(ActivityEvent.subject_id == uuid.UUID(booking["id"]))
        )
    ).all()
    assert event.type == "booking.booked"
    assert event.data["audience"] == "cpts"
    assert PATIENT["family_name"] not in str(event.data)


async def test_a_cpts_booking_takes_a_slot_but_is_no_sas_booking(client, territory):
    gp = territory.practitioner_id
    sas = await add_slot(client, territory, gp, 3)
    cpts = await add_slot(client, territory, gp, 4, visibility="cpts")
    assert (await member_book(client, territory.regulator, sas)).status_code == 201
    assert (await member_book(client, territory.practice, cpts)).status_code == 201
    today = datetime.now(UTC).date()
    r = await client.get(
        "/v1/indicators",
        params={
            "from": (today - timedelta(days=1)).isoformat(),
            "to": (today + timedelta(days=3)).isoformat(),
            "granularity": "month",
        },
        headers=territory.coordinator,
    )
    assert r.status_code == 200, r.text
    snp = [p["snp"] for p in r.json()["periods"]]
    assert sum(s["slots_booked_by_sas"] for s in snp) == 1
    assert sum(s["booked_within_48h"] for s in snp) == 1
    assert sum(s["slots_taken"] for s in snp) == 2
    start = (datetime.now(UTC) - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    end = (datetime.now(UTC) + timedelta(days=3)).isoformat().replace("+00:00", "Z")
    r = await client.get(
        "/v1/unmet-requests/summary",
        params={"from": start, "to": end},
        headers=territory.coordinator,
    )
    assert r.status_code == 200, r.text
    assert r.json()["placed_slots"] == 1


async def test_fhir_and_smart_links_never_carry_cpts_slots(client, world, territory):
    sas = await add_slot(client, territory, territory.practitioner_id, 3)
    cpts = await add_slot(client, territory, territory.practitioner_id, 4, visibility="cpts")
    r = await client.get("/fhir/Slot?status=free", headers=territory.regulator)
    assert r.status_code == 200, r.text
    assert [e["resource"]["id"] for e in r.json()["entry"]] == [sas]
    assert (await client.get(f"/fhir/Slot/{sas}", headers=territory.regulator)).status_code == 200
    platform = await world.key("sas_platform")
    for key in (territory.regulator, platform):
        assert (await client.get(f"/fhir/Slot/{cpts}", headers=key)).status_code == 404
        r = await client.get("/fhir/$bulk-publish/Slot.ndjson", headers=key)
        assert r.status_code == 200 and cpts not in r.text
    r = await client.get("/fhir/$bulk-publish/Slot.ndjson", headers=territory.regulator)
    assert sas in r.text
    assert cpts not in (await client.get("/fhir/$bulk-publish/Slot.ndjson")).text


async def test_a_cpts_booking_is_no_fhir_appointment_of_the_sas(client, world, territory):
    cpts = await add_slot(client, territory, territory.practitioner_id, 3, visibility="cpts")
    booking = (await member_book(client, territory.practice, cpts)).json()
    path = f"/fhir/Appointment/{booking['id']}"
    assert (await client.get(path, headers=territory.regulator)).status_code == 404
    listed = await client.get("/fhir/Appointment", headers=territory.regulator)
    assert listed.status_code == 200 and booking["id"] not in listed.text
    platform = await world.key("sas_platform")
    assert (await client.get(path, headers=platform)).status_code in (403, 404)
    assert (await client.get(path, headers=territory.coordinator)).status_code == 200
