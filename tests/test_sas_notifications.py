"""Appointment notifications to the national SAS platform, against a real local receiver."""

import json
import uuid
from urllib.parse import parse_qs

import httpx
import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import update

from app.config import get_settings
from app.outbox.models import OutboxMessage
from app.sas_bridge.outbox import deliver_due
from tests.conftest import assert_problem
from tests.fhir_profiles import assert_conforms
from tests.receiver import Receiver
from tests.test_bookings import PATIENT, idem
from tests.test_regulator_accounts import SAS, account
from tests.test_slot_search import add_slot


@pytest.fixture
async def platform_receiver(monkeypatch):
    receiver = await Receiver().start()
    monkeypatch.setattr(get_settings(), "sas_platform_url", f"{receiver.url}/fhir")
    monkeypatch.setattr(get_settings(), "outbox_max_attempts", 3)
    yield receiver
    await receiver.stop()


async def book_with(client, territory, operator, hours=3):
    slot_id = await add_slot(client, territory, territory.practitioner_id, hours)
    r = await client.post(
        "/v1/bookings",
        json={"slot_id": slot_id, "patient": PATIENT, "operator": operator},
        headers={**territory.regulator, **idem()},
    )
    assert r.status_code == 201, r.text
    return r.json()


async def deliver(sessionmaker):
    async with httpx.AsyncClient(timeout=2) as http:
        return await deliver_due(sessionmaker, http, platform=http)


async def make_due(session):
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == "pending")
        .values(next_attempt_at=OutboxMessage.created_at)
    )
    await session.commit()


async def test_booking_is_posted_then_cancel_is_a_conditional_put(
    client, territory, operator, platform_receiver, sessionmaker
):
    booking = await book_with(client, territory, operator)
    await client.post(
        f"/v1/bookings/{booking['id']}/cancel", json={"reason": "x"}, headers=territory.regulator
    )
    assert (await deliver(sessionmaker))["delivered"] == 1  # the POST; the PUT waits for it
    assert (await deliver(sessionmaker))["delivered"] == 1
    post, put = platform_receiver.received
    assert (post.method, post.path) == ("POST", "/fhir/Appointment")
    assert post.headers["content-type"] == "application/fhir+json"
    created = json.loads(post.body)
    get_fhir_model_class("Appointment").model_validate(created)
    assert created["meta"]["profile"] == ["http://sas.fr/fhir/StructureDefinition/FrAppointmentSAS"]
    assert created["status"] == "booked"
    assert created["identifier"] == [
        {"system": "http://127.0.0.1:8000/fhir/Appointment", "value": booking["id"]}
    ]
    ext = created["extension"][0]
    assert ext["url"] == "http://interopsante.org/fhir/StructureDefinition/FrAppointmentOperator"
    assert ext["valueReference"]["identifier"]["value"] == operator["value"]
    assert ext["valueReference"]["identifier"]["type"]["coding"][0]["code"] == "INTRN"
    actor = created["participant"][0]["actor"]["identifier"]
    assert actor["value"].startswith("8") and len(actor["value"]) == 12
    assert created["participant"][0]["status"] == "accepted"
    assert PATIENT["family_name"] not in post.body.decode()
    assert put.method == "PUT" and put.path == "/fhir/Appointment"
    assert parse_qs(put.query)["identifier"] == [
        f"http://127.0.0.1:8000/fhir/Appointment|{booking['id']}"
    ]
    assert json.loads(put.body)["status"] == "cancelled"
    for sent in (created, json.loads(put.body)):
        assert_conforms(sent)  # FrAppointmentSAS, from the guide's snapshot


async def test_a_put_never_overtakes_its_post(
    client, territory, operator, platform_receiver, sessionmaker, session
):
    booking = await book_with(client, territory, operator)
    await client.post(
        f"/v1/bookings/{booking['id']}/cancel", json={"reason": "x"}, headers=territory.regulator
    )
    platform_receiver.status = 503
    await deliver(sessionmaker)
    assert [r.method for r in platform_receiver.received] == ["POST"]
    platform_receiver.status = 200
    await make_due(session)
    await deliver(sessionmaker)
    assert [r.method for r in platform_receiver.received] == ["POST", "POST"]
    await deliver(sessionmaker)
    assert [r.method for r in platform_receiver.received] == ["POST", "POST", "PUT"]


async def test_dead_letter_after_the_configured_attempts(
    client, territory, operator, platform_receiver, sessionmaker, session
):
    await book_with(client, territory, operator)
    platform_receiver.status = 500
    for _ in range(3):
        await deliver(sessionmaker)
        await make_due(session)
    r = await client.get("/v1/sas-notifications?status=failed", headers=territory.coordinator)
    assert r.status_code == 200, r.text
    [failed] = r.json()
    assert failed["attempts"] == 3 and failed["last_status_code"] == 500
    platform_receiver.status = 200
    r = await client.post(
        f"/v1/sas-notifications/{failed['id']}/retry", headers=territory.coordinator
    )
    assert r.json()["status"] == "pending"
    assert (await deliver(sessionmaker))["delivered"] == 1


async def test_hold_is_not_notified_until_confirmed(
    client, territory, operator, platform_receiver, sessionmaker
):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    held = (
        await client.post(
            "/v1/bookings",
            json={"slot_id": slot_id, "hold": True, "operator": operator},
            headers={**territory.regulator, **idem()},
        )
    ).json()
    await client.post(
        f"/v1/bookings/{held['id']}/cancel", json={"reason": "x"}, headers=territory.regulator
    )
    assert (await deliver(sessionmaker))["delivered"] == 0


async def test_unknown_or_inactive_operator_is_a_422(client, territory, world, operator):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    r = await client.post(
        "/v1/bookings",
        json={
            "slot_id": slot_id,
            "patient": PATIENT,
            "operator": {"system": SAS, "value": str(uuid.uuid4())},
        },
        headers={**territory.regulator, **idem()},
    )
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "operator"]
    platform = await world.key("sas_platform")
    await client.put(
        f"/fhir/Practitioner?identifier={SAS}|{operator['value']}",
        json=account(operator["value"], active=False),
        headers=platform,
    )
    r = await client.post(
        "/v1/bookings",
        json={"slot_id": slot_id, "patient": PATIENT, "operator": operator},
        headers={**territory.regulator, **idem()},
    )
    assert "inactive" in assert_problem(r, 422)["errors"][0]["msg"]


async def test_no_platform_configured_means_no_notification(
    client, territory, operator, sessionmaker
):
    await book_with(client, territory, operator)
    async with httpx.AsyncClient(timeout=2) as http:
        assert (await deliver_due(sessionmaker, http))["delivered"] == 0
