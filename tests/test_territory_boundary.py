"""A regulator key minted by a coordinator acts in that coordinator's territory only, even for a
SAS linked to several territories, and only while the SAS stays linked to it. The SAS here
(`territory.regulator_id`) serves territories A (`territory`) and B (`other_territory`)."""

import uuid
from dataclasses import dataclass

import pytest

from tests.conftest import Territory
from tests.test_bookings import PATIENT, book, idem
from tests.test_slot_search import add_slot


@dataclass
class Shared:
    a: Territory
    b: Territory
    scoped: dict[str, str]  # regulator key of the shared SAS, minted by A's coordinator
    scoped_id: str
    a_slot: str
    b_slot: str
    b_booking: str  # booked in B by the SAS's instance-wide key (minted by an admin)


async def _mint(client, coordinator, regulator_id):
    r = await client.post(
        "/v1/keys",
        json={"role": "regulator", "name": "régulation A", "regulator_id": regulator_id},
        headers=coordinator,
    )
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['key']}"}, r.json()["id"]


@pytest.fixture
async def shared(client, admin, territory, other_territory) -> Shared:
    r = await client.post(
        f"/v1/territories/{other_territory.id}/regulators",
        json={"regulator_id": territory.regulator_id},
        headers=admin,
    )
    assert r.status_code == 204, r.text
    scoped, scoped_id = await _mint(client, territory.coordinator, territory.regulator_id)
    a_slot = await add_slot(client, territory, territory.practitioner_id, 3)
    b_slot = await add_slot(client, other_territory, other_territory.practitioner_id, 4)
    # The SAS's admin-minted key acts in both territories; it books in B.
    b_booked = await add_slot(client, other_territory, other_territory.practitioner_id, 6)
    r = await book(client, territory, b_booked)
    assert r.status_code == 201, r.text
    return Shared(territory, other_territory, scoped, scoped_id, a_slot, b_slot, r.json()["id"])


async def _book(client, key, slot_id, **body):
    payload = {"slot_id": slot_id, "patient": PATIENT, **body}
    return await client.post("/v1/bookings", json=payload, headers={**key, **idem()})


async def test_scoped_regulator_key_does_not_list_or_read_the_other_territorys_bookings(
    client, shared
):
    listed = await client.get("/v1/bookings", headers=shared.scoped)
    assert listed.status_code == 200
    assert shared.b_booking not in [b["id"] for b in listed.json()["items"]]
    assert "Lemoine" not in listed.text
    r = await client.get(f"/v1/bookings/{shared.b_booking}", headers=shared.scoped)
    assert r.status_code == 404


async def test_scoped_regulator_key_does_not_read_the_other_territorys_appointments(client, shared):
    bundle = (await client.get("/fhir/Appointment", headers=shared.scoped)).json()
    assert [e["resource"]["id"] for e in bundle.get("entry", [])] == []
    r = await client.get(f"/fhir/Appointment/{shared.b_booking}", headers=shared.scoped)
    assert r.status_code == 404


async def test_scoped_regulator_key_searches_only_its_territorys_slots(client, shared):
    found = (await client.get("/v1/slots", headers=shared.scoped)).json()["items"]
    assert [s["id"] for s in found] == [shared.a_slot]
    bundle = (await client.get("/fhir/Slot?status=free", headers=shared.scoped)).json()
    assert {
        e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Slot"
    } == {shared.a_slot}
    r = await client.get(f"/fhir/Slot/{shared.b_slot}", headers=shared.scoped)
    assert r.status_code == 404


async def test_scoped_regulator_key_cannot_book_or_hold_the_other_territorys_slot(client, shared):
    assert (await _book(client, shared.scoped, shared.b_slot)).status_code == 404
    r = await client.post(
        "/v1/bookings",
        json={"slot_id": shared.b_slot, "hold": True},
        headers={**shared.scoped, **idem()},
    )
    assert r.status_code == 404
    assert (await _book(client, shared.scoped, shared.a_slot)).status_code == 201


async def test_scoped_regulator_key_cannot_overbook_in_the_other_territory(client, shared, admin):
    r = await client.patch(
        f"/v1/practitioners/{shared.b.practitioner_id}",
        json={"accepts_overbooking": True, "overbooking_daily_cap": 3},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    body = {
        "practitioner_id": shared.b.practitioner_id,
        "start": "2100-01-01T10:00:00+01:00",
        "patient": PATIENT,
    }
    r = await client.post("/v1/bookings/overbook", json=body, headers={**shared.scoped, **idem()})
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "practitioner_id"]


async def test_scoped_regulator_key_cannot_confirm_or_cancel_the_other_territorys_booking(
    client, shared
):
    r = await client.post(
        "/v1/bookings",
        json={"slot_id": shared.b_slot, "hold": True},
        headers={**shared.a.regulator, **idem()},
    )
    assert r.status_code == 201, r.text
    held = r.json()["id"]
    confirm = await client.post(
        f"/v1/bookings/{held}/confirm", json={"patient": PATIENT}, headers=shared.scoped
    )
    assert confirm.status_code == 404
    for booking_id in (held, shared.b_booking):
        cancel = await client.post(
            f"/v1/bookings/{booking_id}/cancel", json={"reason": "x"}, headers=shared.scoped
        )
        assert cancel.status_code == 404
    still = await client.get(f"/v1/bookings/{shared.b_booking}", headers=shared.a.regulator)
    assert still.json()["status"] == "booked"


async def test_scoped_regulator_key_registers_mt_requests_in_its_territory_only(client, shared):
    body = {"patient": PATIENT, "ald": False, "precarity": False, "source": "hotline"}
    r = await client.post(
        "/v1/mt-requests",
        json={**body, "territory_id": shared.b.id},
        headers={**shared.scoped, **idem()},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "territory_id"]
    r = await client.post("/v1/mt-requests", json=body, headers={**shared.scoped, **idem()})
    assert r.status_code == 201, r.text
    assert r.json()["territory_id"] == shared.a.id
    b_queue = (await client.get("/v1/mt-requests", headers=shared.b.coordinator)).json()
    assert b_queue["items"] == []


async def test_scoped_regulator_key_sees_only_its_territory_in_the_directory(client, shared):
    territories = (await client.get("/v1/territories", headers=shared.scoped)).json()["items"]
    assert [t["id"] for t in territories] == [shared.a.id]
    sas = (
        await client.get(f"/v1/regulators/{shared.a.regulator_id}", headers=shared.scoped)
    ).json()
    assert sas["territory_ids"] == [shared.a.id]
    r = await client.get(f"/v1/practitioners/{shared.b.practitioner_id}", headers=shared.scoped)
    assert r.status_code == 404


async def test_scoped_regulator_key_loses_its_territory_when_the_sas_is_unlinked(
    client, shared, admin
):
    booked = await _book(client, shared.scoped, shared.a_slot)
    assert booked.status_code == 201, booked.text
    r = await client.delete(
        f"/v1/territories/{shared.a.id}/regulators/{shared.a.regulator_id}", headers=admin
    )
    assert r.status_code == 204, r.text
    assert (await client.get("/v1/bookings", headers=shared.scoped)).json()["items"] == []
    r = await client.get(f"/v1/bookings/{booked.json()['id']}", headers=shared.scoped)
    assert r.status_code == 404
    assert (await client.get("/v1/slots", headers=shared.scoped)).json()["items"] == []
    a_other = await add_slot(client, shared.a, shared.a.practitioner_id, 8)
    assert (await _book(client, shared.scoped, a_other)).status_code == 404
    assert (await _book(client, shared.scoped, shared.b_slot)).status_code == 404


async def test_unlinked_sas_key_loses_the_territory_for_the_admin_minted_key_too(
    client, shared, admin
):
    r = await client.delete(
        f"/v1/territories/{shared.b.id}/regulators/{shared.a.regulator_id}", headers=admin
    )
    assert r.status_code == 204
    assert (
        await client.get(f"/v1/bookings/{shared.b_booking}", headers=shared.a.regulator)
    ).status_code == 404


async def test_coordinator_lists_and_revokes_every_key_that_acts_in_its_territory(
    client, shared, session
):
    from sqlalchemy import select

    from app.directory.models import ApiKey

    admin_minted = await session.scalar(
        select(ApiKey.id).where(
            ApiKey.regulator_id == uuid.UUID(shared.a.regulator_id), ApiKey.territory_id.is_(None)
        )
    )
    b_keys = (await client.get("/v1/keys", headers=shared.b.coordinator)).json()["items"]
    b_ids = {k["id"] for k in b_keys}
    assert str(admin_minted) in b_ids  # acts in B: B's coordinator sees it
    assert shared.scoped_id not in b_ids  # acts in A only
    a_ids = {
        k["id"]
        for k in (await client.get("/v1/keys", headers=shared.a.coordinator)).json()["items"]
    }
    assert {shared.scoped_id, str(admin_minted)} <= a_ids

    r = await client.delete(f"/v1/keys/{admin_minted}", headers=shared.b.coordinator)
    assert r.status_code == 204, r.text
    assert (await client.get("/v1/bookings", headers=shared.a.regulator)).status_code == 401
    r = await client.delete(f"/v1/keys/{shared.scoped_id}", headers=shared.b.coordinator)
    assert r.status_code == 404


async def test_scoped_regulator_keys_webhook_hears_only_its_territorys_bookings(
    client, shared, session, monkeypatch
):
    from sqlalchemy import select

    from app.config import get_settings
    from app.outbox.models import OutboxMessage

    monkeypatch.setattr(get_settings(), "webhook_allow_insecure_urls", True)
    r = await client.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=shared.scoped
    )
    assert r.status_code == 201, r.text
    endpoint = uuid.UUID(r.json()["id"])
    b_slot = await add_slot(client, shared.b, shared.b.practitioner_id, 9)
    assert (await book(client, shared.a, b_slot)).status_code == 201  # in B, admin-minted key
    assert (await _book(client, shared.scoped, shared.a_slot)).status_code == 201  # in A
    sent = (
        await session.scalars(
            select(OutboxMessage.payload).where(OutboxMessage.endpoint_id == endpoint)
        )
    ).all()
    assert [m["data"]["booking"]["slot_id"] for m in sent] == [shared.a_slot]
    listed = (await client.get("/v1/webhooks", headers=shared.scoped)).json()
    assert [w["id"] for w in listed] == [str(endpoint)]
