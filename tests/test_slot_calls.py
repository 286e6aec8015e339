"""Calls for slots: a territory under its floor calls the GPs who accept such calls, by
e-mail to a real local SMTP server (aiosmtpd) and by the webhook event `offer.low`, at most
once a GP and local day, each call logged with the slots it produced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from app.activity.models import ActivityEvent
from app.config import Settings
from app.outbox.models import OutboxMessage
from app.unmet_demand import calls
from app.unmet_demand.models import SlotCall
from tests.conftest import assert_problem, practitioner_body
from tests.test_agenda_page import smtp  # noqa: F401 - fixture
from tests.test_slot_search import add_slot

EMAIL = "claire.martin@msp-aurillac.fr"


async def floor(client, t, value=2, **over):
    r = await client.put(
        "/v1/slot-calls/floor", json={"floor": value, **over}, headers=t.coordinator
    )
    assert r.status_code == 200, r.text
    return r.json()


async def opt_in(client, t, practitioner_id, key=None, email=EMAIL):
    return await client.put(
        f"/v1/slot-calls/opt-ins/{practitioner_id}",
        json={"email": email},
        headers=key or t.practice,
    )


async def run(client, t) -> int:
    r = await client.post("/v1/slot-calls/run", headers=t.coordinator)
    assert r.status_code == 200, r.text
    return int(r.json()["calls"])


async def test_under_the_floor_opted_in_gps_are_called_with_a_webhook(client, territory, session):
    other_gp = await client.post(
        "/v1/practitioners", json=practitioner_body(territory.practice_id),
        headers=territory.coordinator,
    )  # fmt: skip
    assert other_gp.status_code == 201  # did not opt in: never called
    await client.post(
        "/v1/webhooks", json={"url": "https://cabinet.example/hooks"}, headers=territory.practice
    )
    await add_slot(client, territory, territory.practitioner_id, 3)  # 1 free slot, floor 2
    await floor(client, territory, 2)
    assert (await opt_in(client, territory, territory.practitioner_id)).status_code == 204
    assert await run(client, territory) == 1
    [call] = list(await session.scalars(select(SlotCall)))
    assert str(call.practitioner_id) == territory.practitioner_id
    assert (call.free_slots, call.floor, call.mail_status) == (1, 2, "pending")
    [hook] = list(
        await session.scalars(select(OutboxMessage).where(OutboxMessage.event_type == "offer.low"))
    )
    assert hook.payload["type"] == "offer.low"
    assert hook.payload["data"]["offer"]["free_slots"] == 1
    event = await session.scalar(
        select(ActivityEvent).where(ActivityEvent.type == "slots.call_sent")
    )
    assert event is not None and event.subject_id == call.id


async def test_at_most_one_call_per_gp_and_local_day(client, territory, session):
    await floor(client, territory, 1)
    await opt_in(client, territory, territory.practitioner_id)
    now = datetime(2030, 3, 4, 8, 0, tzinfo=UTC)  # 09:00 in Paris
    assert len(await calls.run(session, now)) == 1
    assert await calls.run(session, now + timedelta(hours=12)) == []  # 21:00, same day
    assert len(await calls.run(session, now + timedelta(hours=16))) == 1  # next local day
    assert len(list(await session.scalars(select(SlotCall)))) == 2


async def test_an_offer_at_the_floor_calls_nobody(client, territory):
    await add_slot(client, territory, territory.practitioner_id, 3)
    await add_slot(client, territory, territory.practitioner_id, 4)
    await floor(client, territory, 2)
    await opt_in(client, territory, territory.practitioner_id)
    assert await run(client, territory) == 0


async def test_the_call_is_e_mailed_once_without_patient_data(client, territory, session, smtp):  # noqa: F811
    await floor(client, territory, 1)
    await opt_in(client, territory, territory.practitioner_id)
    assert await run(client, territory) == 1
    settings = Settings(smtp_host="127.0.0.1", smtp_port=smtp.port,
                        public_base_url="https://creneau.example")  # fmt: skip
    assert await calls.send_pending(session, settings) == {"sent": 1, "failed": 0}
    assert await calls.send_pending(session, settings) == {"sent": 0, "failed": 0}
    [message] = await smtp.inbox.wait(1)
    assert message["To"] == EMAIL
    body = message.get_content()
    assert "Il ne reste que 0 créneau(x) libre(s)" in body and "seuil fixé par la CPTS : 1" in body
    assert "https://creneau.example/cabinet" in body and "Martin" in body
    assert (await session.scalar(select(SlotCall.mail_status))) == "sent"


async def test_the_log_shows_the_slots_each_call_produced(client, territory, session):
    await floor(client, territory, 1)
    await opt_in(client, territory, territory.practitioner_id)
    await run(client, territory)
    # The test's one transaction dates every row at its start: the call went an hour ago.
    await session.execute(update(SlotCall).values(sent_at=SlotCall.sent_at - timedelta(hours=1)))
    await add_slot(client, territory, territory.practitioner_id, 30)
    await add_slot(client, territory, territory.practitioner_id, 31)
    r = await client.get("/v1/slot-calls", headers=territory.coordinator)
    assert r.status_code == 200, r.text
    [call] = r.json()
    assert call["practitioner_id"] == territory.practitioner_id
    assert call["slots_published_within_24h"] == 2


@pytest.mark.parametrize("body", [{"floor": -1}, {"floor": 2, "window_hours": 0}, {"x": 1}])
async def test_bad_floors_are_422(client, territory, body):
    r = await client.put("/v1/slot-calls/floor", json=body, headers=territory.coordinator)
    assert_problem(r, 422)


async def test_who_sets_floors_and_opt_ins(client, territory, other_territory):
    r = await client.put("/v1/slot-calls/floor", json={"floor": 1}, headers=territory.regulator)
    assert_problem(r, 403)
    assert_problem(await opt_in(client, territory, territory.practitioner_id, email="nope"), 422)
    r = await opt_in(client, territory, other_territory.practitioner_id)
    assert_problem(r, 404)
    r = await opt_in(client, territory, territory.practitioner_id, key=territory.coordinator)
    assert r.status_code == 204
    r = await client.delete(
        f"/v1/slot-calls/opt-ins/{territory.practitioner_id}", headers=territory.practice
    )
    assert r.status_code == 204
