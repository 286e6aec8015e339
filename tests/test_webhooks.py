"""Webhooks delivered from the outbox to a real local HTTP receiver."""

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from app.config import get_settings
from app.outbox.models import OutboxMessage
from app.sas_bridge.outbox import deliver_due
from tests.conftest import assert_problem
from tests.receiver import Receiver
from tests.test_bookings import PATIENT, book
from tests.test_slot_search import add_slot


@pytest.fixture
async def receiver():
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
def insecure_urls(monkeypatch):
    monkeypatch.setattr(get_settings(), "webhook_allow_insecure_urls", True)
    monkeypatch.setattr(get_settings(), "outbox_max_attempts", 2)


async def register(client, key, url, events=None):
    r = await client.post("/v1/webhooks", json={"url": url, "events": events or []}, headers=key)
    assert r.status_code == 201, r.text
    return r.json()


async def test_plain_http_and_private_addresses_are_refused(client, territory):
    for url in ("http://example.org/hook", "https://127.0.0.1/hook", "https://10.0.0.2/x"):
        r = await client.post("/v1/webhooks", json={"url": url}, headers=territory.practice)
        assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "url"]


async def test_booking_is_delivered_signed_and_without_patient_data(
    client, territory, sessionmaker, receiver, insecure_urls
):
    hook = await register(client, territory.practice, f"{receiver.url}/hook")
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    booking = (await book(client, territory, slot_id)).json()
    async with httpx.AsyncClient(timeout=2) as http:
        result = await deliver_due(sessionmaker, http)
    assert result["delivered"] == 1
    [got] = receiver.received
    payload = json.loads(got.body)
    assert payload["type"] == "booking.booked"
    assert payload["data"]["booking"]["id"] == booking["id"]
    assert PATIENT["family_name"] not in got.body.decode()
    t, v1 = (part.split("=", 1)[1] for part in got.headers["creneau-signature"].split(","))
    expected = hmac.new(
        hook["secret"].encode(), f"{t}.".encode() + got.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(v1, expected) and abs(int(t) - time.time()) < 60
    assert got.headers["creneau-event-type"] == "booking.booked"
    r = await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=territory.practice)
    assert r.json()[0]["status"] == "delivered"


async def test_failing_receiver_is_retried_then_dead_lettered_then_retried_by_hand(
    client, territory, sessionmaker, session, receiver, insecure_urls
):
    receiver.status = 500
    hook = await register(client, territory.regulator, f"{receiver.url}/sas")
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    await book(client, territory, slot_id)
    async with httpx.AsyncClient(timeout=2) as http:
        assert (await deliver_due(sessionmaker, http))["retried"] == 1
        message = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.endpoint_id == uuid.UUID(hook["id"]))
        )
        await session.refresh(message)
        assert message.status == "pending" and message.last_status_code == 500
        message.next_attempt_at = message.created_at  # due again now
        await session.commit()
        assert (await deliver_due(sessionmaker, http))["failed"] == 1
    r = await client.get(
        f"/v1/webhooks/{hook['id']}/deliveries?status=failed", headers=territory.regulator
    )
    [failed] = r.json()
    assert failed["attempts"] == 2
    receiver.status = 200
    r = await client.post(
        f"/v1/webhooks/{hook['id']}/deliveries/{failed['id']}/retry", headers=territory.regulator
    )
    assert r.json()["status"] == "pending"
    async with httpx.AsyncClient(timeout=2) as http:
        assert (await deliver_due(sessionmaker, http))["delivered"] == 1


async def test_slow_receiver_does_not_slow_booking(
    client, territory, sessionmaker, receiver, insecure_urls
):
    receiver.delay = 3
    await register(client, territory.practice, f"{receiver.url}/slow")
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    started = time.perf_counter()
    assert (await book(client, territory, slot_id)).status_code == 201
    assert time.perf_counter() - started < 1
    async with httpx.AsyncClient(timeout=0.5) as http:
        result = await deliver_due(sessionmaker, http)
    assert result["retried"] == 1


async def test_event_filter_and_owner_isolation(
    client, territory, other_territory, sessionmaker, receiver, insecure_urls
):
    await register(
        client, territory.regulator, f"{receiver.url}/only-cancel", events=["booking.cancelled"]
    )
    await register(client, other_territory.practice, f"{receiver.url}/other")
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    booking = (await book(client, territory, slot_id)).json()
    await client.post(
        f"/v1/bookings/{booking['id']}/cancel", json={"reason": "x"}, headers=territory.regulator
    )
    async with httpx.AsyncClient(timeout=2) as http:
        await deliver_due(sessionmaker, http)
    assert [(r.path, json.loads(r.body)["type"]) for r in receiver.received] == [
        ("/only-cancel", "booking.cancelled")
    ]


async def test_endpoints_belong_to_their_owner(
    client, territory, other_territory, receiver, insecure_urls
):
    hook = await register(client, territory.practice, f"{receiver.url}/a")
    assert_problem(
        await client.delete(f"/v1/webhooks/{hook['id']}", headers=other_territory.practice), 404
    )
    assert_problem(await client.get("/v1/webhooks", headers=territory.coordinator), 403)
    listed = (await client.get("/v1/webhooks", headers=territory.practice)).json()
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]


async def test_cancel_queues_the_cancelled_booking_for_each_endpoint(
    client, territory, session, receiver, insecure_urls
):
    await register(client, territory.practice, f"{receiver.url}/practice")
    await register(client, territory.regulator, f"{receiver.url}/sas", events=["booking.booked"])
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    booking = (await book(client, territory, slot_id, sas_case_ref="SAS-15-0003")).json()
    r = await client.post(
        f"/v1/bookings/{booking['id']}/cancel", json={"reason": "x"}, headers=territory.regulator
    )
    assert r.status_code == 200, r.text
    [message] = (
        await session.scalars(
            select(OutboxMessage).where(OutboxMessage.event_type == "booking.cancelled")
        )
    ).all()
    assert (message.kind, message.status, message.attempts) == ("webhook", "pending", 0)
    assert message.payload["id"] == str(message.event_id)
    assert message.payload["type"] == "booking.cancelled"
    assert message.payload["data"] == {
        "booking": {
            "id": booking["id"],
            "status": "cancelled",
            "slot_id": slot_id,
            "practitioner_id": territory.practitioner_id,
            "practice_id": territory.practice_id,
            "start": datetime.fromisoformat(booking["start"]).astimezone(UTC).isoformat(),
            "end": datetime.fromisoformat(booking["end"]).astimezone(UTC).isoformat(),
            "modality": "cabinet",
            "overbooked": False,
            "sas_case_ref": "SAS-15-0003",
        }
    }
