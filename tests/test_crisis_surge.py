"""Surge mode (issue 29): declaring a crisis calls each volunteer of the territory's plan once
(e-mail to a real local SMTP server, webhook `crisis.declared` to a real local receiver, each
with its signed link), raises the caps the plan says, lets the GP open its pledged capacity
(slots carrying the crisis' id), puts that capacity first in the SAS's search, and ending the
crisis closes it, stops the e-mails and restores the caps."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from app.activity.models import ActivityEvent
from app.config import Settings
from app.crisis import calls
from app.crisis.models import Crisis, CrisisCall, CrisisPlan
from app.crisis.plan_schemas import PlanDocument
from app.directory.models import Practitioner
from app.outbox.models import OutboxMessage, WebhookEndpoint
from app.sas_bridge.outbox import deliver_due
from app.scheduling.materialisation import materialize_all
from app.scheduling.models import Slot
from tests.conftest import assert_problem, practice_body, practitioner_body
from tests.test_agenda_page import smtp  # noqa: F401 - fixture
from tests.test_bookings import book
from tests.test_webhooks import insecure_urls, receiver, register  # noqa: F401 - fixtures

# Monday 4 March 2030, 09:00 in Paris.
MONDAY = datetime(2030, 3, 4, 8, 0, tzinfo=UTC)
EMAIL = "claire.martin@msp-aurillac.fr"
# Monday to Friday, 14:00-16:00, 30-minute slots: 4 a day.
PLEDGE = {
    "modality": "cabinet",
    "weekdays": [1, 2, 3, 4, 5],
    "start_time": "14:00",
    "end_time": "16:00",
    "slot_minutes": 30,
}


def volunteer(practitioner_id: str, **over: Any) -> dict[str, Any]:
    return {"practitioner_id": practitioner_id, "pledges": [PLEDGE], **over}


async def write_plan(
    session, territory_id: str, volunteers: list[dict[str, Any]], version: int = 1, **over: Any
) -> CrisisPlan:
    """A plan version inserted directly (the plan's service is another helper's)."""
    plan = CrisisPlan(
        id=uuid.uuid4(),
        territory_id=uuid.UUID(territory_id),
        version=version,
        document={"reviewed_on": "2030-01-15", "volunteers": volunteers, **over},
        reviewed_on=date(2030, 1, 15),
        created_at=MONDAY - timedelta(days=30),
    )
    session.add(plan)
    await session.flush()
    return plan


def crisis_body(**over: Any) -> dict[str, Any]:
    return {
        "kind": "epidemic",
        "title": "Grippe saisonnière",
        "started_at": (MONDAY - timedelta(hours=2)).isoformat(),
        # Wednesday 6 March, 13:00 in Paris: the surge rules run Monday to Wednesday.
        "expected_end_at": (MONDAY + timedelta(days=2, hours=4)).isoformat(),
        "communes": ["Aurillac"],
        **over,
    }


async def declare(client, t, **over: Any) -> httpx.Response:
    return await client.post("/v1/crises", json=crisis_body(**over), headers=t.coordinator)


async def second_gp(client, t) -> str:
    r = await client.post(
        "/v1/practitioners", json=practitioner_body(t.practice_id, family_name="Durand"),
        headers=t.coordinator,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def mail_settings(smtp_port: int) -> Settings:
    return Settings(
        smtp_host="127.0.0.1", smtp_port=smtp_port, public_base_url="https://creneau.example"
    )


async def test_declaring_calls_each_volunteer_once_by_mail_and_webhook(
    client, territory, other_territory, session, sessionmaker, smtp, receiver, insecure_urls,  # noqa: F811
    clock,
):  # fmt: skip
    clock.set(MONDAY)
    durand = await second_gp(client, territory)
    stranger = other_territory.practitioner_id  # in the plan by mistake: another territory
    await write_plan(session, territory.id, [
        volunteer(territory.practitioner_id, email=EMAIL), volunteer(durand), volunteer(stranger),
    ])  # fmt: skip
    await register(client, territory.practice, f"{receiver.url}/cabinet", ["crisis.declared"])
    await register(client, territory.regulator, f"{receiver.url}/sas", ["crisis.declared"])
    r = await declare(client, territory)
    assert r.status_code == 201, r.text
    crisis = r.json()
    assert (crisis["volunteers_called"], crisis["running"], crisis["note"]) == (2, True, None)
    assert crisis["communes"] == ["15014"]  # Aurillac, by name
    by_gp = {c["practitioner_id"]: c for c in crisis["calls"]}
    assert by_gp[territory.practitioner_id]["mail_status"] == "pending"
    assert by_gp[durand]["mail_status"] == "none"  # no address in the plan
    # A retried declaration is refused; calling again calls nobody twice.
    assert_problem(await declare(client, territory), 409)
    row = await session.get(Crisis, uuid.UUID(crisis["id"]))
    assert await calls.call_volunteers(session, row, None, MONDAY, mail_settings(1)) == 0
    plan = await session.scalar(select(CrisisPlan))
    document = PlanDocument.model_validate(plan.document)
    assert await calls.call_volunteers(session, row, document, MONDAY, mail_settings(1)) == 0
    assert await session.scalar(select(func.count()).select_from(CrisisCall)) == 2
    # The e-mail leaves once, after commit, with the link.
    assert await calls.send_pending(session, mail_settings(smtp.port)) == {"sent": 1, "failed": 0}
    assert await calls.send_pending(session, mail_settings(smtp.port)) == {"sent": 0, "failed": 0}
    [message] = await smtp.inbox.wait(1)
    assert message["To"] == EMAIL
    body = message.get_content()
    assert "Grippe saisonnière" in body and "https://creneau.example/cabinet/crise?jeton=" in body
    # The webhooks: one a called GP to the practice (with its link), one to the SAS (none).
    async with httpx.AsyncClient(timeout=2) as http:
        assert (await deliver_due(sessionmaker, http))["delivered"] == 3
    received = [(got.path, json.loads(got.body)) for got in receiver.received]
    practice = [p for path, p in received if path == "/cabinet"]
    sas = [p for path, p in received if path == "/sas"]
    assert {p["data"]["call"]["practitioner_id"] for p in practice} == {
        territory.practitioner_id, durand,
    }  # fmt: skip
    assert all("/cabinet/crise?jeton=" in p["data"]["call"]["link"] for p in practice)
    [to_sas] = sas
    assert to_sas["type"] == "crisis.declared" and "call" not in to_sas["data"]
    assert to_sas["data"]["volunteers_called"] == 2
    events = await session.scalars(select(ActivityEvent.type).where(
        ActivityEvent.type.like("crisis.%")).order_by(ActivityEvent.id))  # fmt: skip
    assert list(events) == ["crisis.declared", "crisis.called", "crisis.called"]


async def test_without_a_plan_nobody_is_called_and_the_answer_says_so(client, territory, clock):
    clock.set(MONDAY)
    r = await declare(client, territory)
    assert r.status_code == 201, r.text
    assert r.json()["volunteers_called"] == 0
    assert "nobody was called" in r.json()["note"]


async def test_the_latest_plan_version_is_the_one_called(client, territory, session, clock):
    clock.set(MONDAY)
    durand = await second_gp(client, territory)
    await write_plan(session, territory.id, [volunteer(territory.practitioner_id)], version=1)
    await write_plan(session, territory.id, [volunteer(durand)], version=2)
    r = await declare(client, territory)
    assert [c["practitioner_id"] for c in r.json()["calls"]] == [durand]


async def test_caps_are_raised_when_the_plan_says_so_and_restored_at_the_end(
    client, territory, session, clock
):
    clock.set(MONDAY)
    durand = await second_gp(client, territory)
    await session.execute(
        update(Practitioner)
        .where(Practitioner.id == uuid.UUID(territory.practitioner_id))
        .values(accepts_overbooking=True, overbooking_daily_cap=2)
    )
    await write_plan(
        session,
        territory.id,
        [
            volunteer(territory.practitioner_id, crisis_overbooking_cap=6),
            volunteer(durand, crisis_overbooking_cap=4),
        ],
        raise_overbooking_caps=True,
    )
    r = await declare(client, territory)
    assert r.status_code == 201, r.text

    async def caps() -> dict[str, tuple[bool, int]]:
        rows = await session.execute(
            select(Practitioner.id, Practitioner.accepts_overbooking,
                   Practitioner.overbooking_daily_cap)
            .where(Practitioner.territory_id == uuid.UUID(territory.id))
            .execution_options(populate_existing=True)
        )  # fmt: skip
        return {str(i): (a, c) for i, a, c in rows}

    assert await caps() == {territory.practitioner_id: (True, 6), durand: (True, 4)}
    by_gp = {c["practitioner_id"]: c["cap_before"] for c in r.json()["calls"]}
    assert by_gp == {territory.practitioner_id: 2, durand: 0}
    r = await client.post(f"/v1/crises/{r.json()['id']}/end", headers=territory.coordinator)
    assert r.status_code == 200, r.text
    session.expire_all()
    assert await caps() == {territory.practitioner_id: (True, 2), durand: (False, 0)}


async def test_without_raise_overbooking_caps_no_cap_changes(client, territory, session, clock):
    clock.set(MONDAY)
    await write_plan(
        session, territory.id, [volunteer(territory.practitioner_id, crisis_overbooking_cap=6)]
    )
    r = await declare(client, territory)
    assert r.json()["calls"][0]["cap_before"] is None
    gp = await session.get(Practitioner, uuid.UUID(territory.practitioner_id))
    await session.refresh(gp)
    assert gp.overbooking_daily_cap == 0


async def declared_with_call(client, t, session, clock, **plan: Any) -> tuple[dict, dict]:
    clock.set(MONDAY)
    await write_plan(session, t.id, [volunteer(t.practitioner_id, email=EMAIL)], **plan)
    r = await declare(client, t)
    assert r.status_code == 201, r.text
    return r.json(), r.json()["calls"][0]


async def crisis_slots(session, crisis_id: str) -> list[Slot]:
    return list(
        await session.scalars(
            select(Slot).where(Slot.crisis_id == uuid.UUID(crisis_id)).order_by(Slot.start)
        )
    )


async def test_the_practice_opens_the_pledged_capacity_once(client, territory, session, clock):
    crisis, call = await declared_with_call(client, territory, session, clock)
    r = await client.post(f"/v1/crisis-calls/{call['id']}/open", headers=territory.practice)
    assert r.status_code == 201, r.text
    # Monday to Wednesday (the expected end's local date), 14:00-16:00 by 30 minutes.
    assert r.json() == {
        "call_id": call["id"], "crisis_id": crisis["id"], "rules": 1, "slots_opened": 12,
        "slots_skipped": 0,
    }  # fmt: skip
    slots = await crisis_slots(session, crisis["id"])
    assert len(slots) == 12 and {s.visibility for s in slots} == {"sas"}
    assert slots[0].start == datetime(2030, 3, 4, 13, 0, tzinfo=UTC)  # 14:00 in Paris
    assert slots[-1].start == datetime(2030, 3, 6, 14, 30, tzinfo=UTC)  # Wednesday 15:30
    assert_problem(
        await client.post(f"/v1/crisis-calls/{call['id']}/open", headers=territory.practice), 409
    )
    r = await client.get(f"/v1/crises/{crisis['id']}", headers=territory.coordinator)
    [seen] = r.json()["calls"]
    assert seen["slots_opened"] == 12 and seen["opened_at"] is not None
    event = await session.scalar(
        select(ActivityEvent).where(ActivityEvent.type == "crisis.capacity_opened")
    )
    assert event is not None and event.data["slots"] == 12
    assert str(event.subject_id) == crisis["id"]


async def test_opening_skips_overlaps_and_takes_edited_hours(client, territory, session, clock):
    crisis, call = await declared_with_call(client, territory, session, clock)
    r = await client.post(
        f"/v1/practitioners/{territory.practitioner_id}/slots",
        json={"start": "2030-03-05T14:00:00+01:00", "end": "2030-03-05T15:00:00+01:00",
              "modality": "cabinet", "visibility": "sas"},
        headers=territory.practice,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    edited = {**PLEDGE, "start_time": "14:00", "end_time": "17:00", "slot_minutes": 60}
    r = await client.post(
        f"/v1/crisis-calls/{call['id']}/open", json={"pledges": [edited]},
        headers=territory.practice,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    # 3 days x 3 hours, Tuesday 14:00 already taken.
    assert (r.json()["slots_opened"], r.json()["slots_skipped"]) == (8, 1)
    the_crisis_slot = await client.get(
        "/v1/slots?from=2030-03-04T13:00:00Z&to=2030-03-04T14:00:00Z", headers=territory.regulator
    )
    [item] = the_crisis_slot.json()["items"]
    assert item["crisis_id"] == crisis["id"]


async def test_another_practice_cannot_open_a_call(client, territory, other_territory, session,
                                                   clock):  # fmt: skip
    _, call = await declared_with_call(client, territory, session, clock)
    r = await client.post(f"/v1/crisis-calls/{call['id']}/open", headers=other_territory.practice)
    assert_problem(r, 404)
    r = await client.post(f"/v1/crisis-calls/{call['id']}/open", headers=territory.coordinator)
    assert_problem(r, 403)
    r = await client.post(
        f"/v1/crisis-calls/{call['id']}/open", json={"pledges": [{**PLEDGE, "weekdays": []}]},
        headers=territory.practice,
    )  # fmt: skip
    assert_problem(r, 422)


async def test_the_sas_finds_crisis_slots_first_also_on_page_two(client, territory, session,
                                                                clock):  # fmt: skip
    crisis, call = await declared_with_call(client, territory, session, clock)
    # Ordinary slots this morning, before any crisis slot of the afternoon.
    ordinary = []
    for hour in (10, 11, 12):
        r = await client.post(
            f"/v1/practitioners/{territory.practitioner_id}/slots",
            json={"start": f"2030-03-04T{hour}:00:00+01:00",
                  "end": f"2030-03-04T{hour}:30:00+01:00", "modality": "cabinet",
                  "visibility": "sas"},
            headers=territory.practice,
        )  # fmt: skip
        ordinary.append(r.json()["id"])
    r = await client.post(f"/v1/crisis-calls/{call['id']}/open", headers=territory.practice)
    assert r.json()["slots_opened"] == 12
    seen: list[dict] = []
    window = "/v1/slots?from=2030-03-04T08:00:00Z&to=2030-03-07T00:00:00Z&limit=5"
    url = window
    while url:
        page = (await client.get(url, headers=territory.regulator)).json()
        seen += page["items"]
        url = f"{window}&cursor={page['next_cursor']}" if page["next_cursor"] else ""
    assert [s["crisis_id"] is not None for s in seen] == [True] * 12 + [False] * 3
    assert [s["id"] for s in seen[12:]] == ordinary
    starts = [s["start"] for s in seen[:12]]
    assert starts == sorted(starts)
    # Once the crisis has ended, what is left of its capacity is ordinary again.
    await client.post(f"/v1/crises/{crisis['id']}/end", headers=territory.coordinator)
    everything = "/v1/slots?from=2030-03-04T08:00:00Z&to=2030-03-07T00:00:00Z"
    after = (await client.get(everything, headers=territory.regulator)).json()["items"]
    assert [s["id"] for s in after] == ordinary


async def test_ending_closes_future_free_crisis_slots_and_keeps_booked_ones(
    client,
    territory,
    session,
    clock,
    smtp,  # noqa: F811
):
    crisis, call = await declared_with_call(client, territory, session, clock)
    await client.post(f"/v1/crisis-calls/{call['id']}/open", headers=territory.practice)
    slots = await crisis_slots(session, crisis["id"])
    booked = await book(client, territory, str(slots[5].id))
    assert booked.status_code == 201, booked.text
    held = await book(client, territory, str(slots[6].id), hold=True)
    assert held.status_code == 201, held.text
    clock.set(MONDAY + timedelta(days=1))  # Tuesday 09:00: Monday's 4 slots are past
    r = await client.post(f"/v1/crises/{crisis['id']}/end", headers=territory.coordinator)
    assert r.status_code == 200, r.text
    body = r.json()
    # Tuesday and Wednesday: 8 slots; one booked and one held stays (the hold has expired).
    assert (body["slots_closed"], body["slots_kept"], body["running"]) == (7, 1, False)
    session.expire_all()
    left = {s.id: s.status for s in await crisis_slots(session, crisis["id"]) if s.start > clock()}
    # The expired hold's slot, which its (expired) booking still names, leaves the offer.
    assert left == {slots[5].id: "booked", slots[6].id: "unavailable"}
    # Ending stops the mails not yet sent, and a second end is refused.
    assert await calls.send_pending(session, mail_settings(smtp.port)) == {"sent": 0, "failed": 0}
    assert (await session.scalar(select(CrisisCall.mail_status))) == "none"
    assert_problem(
        await client.post(f"/v1/crises/{crisis['id']}/end", headers=territory.coordinator), 409
    )
    event = await session.scalar(select(ActivityEvent).where(ActivityEvent.type == "crisis.ended"))
    assert event is not None and event.data == {"slots_closed": 7}
    # The nightly extension makes nothing more for the ended crisis.
    await materialize_all(session, now=clock())
    assert {s.id for s in await crisis_slots(session, crisis["id"]) if s.start > clock()} == set(
        left
    )
    # A new crisis may be declared now.
    assert (await declare(client, territory, title="Canicule", kind="heatwave")).status_code == 201


async def test_territory_boundaries(client, territory, other_territory, admin, session, clock):
    crisis, _ = await declared_with_call(client, territory, session, clock)
    for key in (other_territory.coordinator, other_territory.regulator):
        assert_problem(await client.get(f"/v1/crises/{crisis['id']}", headers=key), 404)
    r = await client.post(f"/v1/crises/{crisis['id']}/end", headers=other_territory.coordinator)
    assert_problem(r, 404)
    assert_problem(await client.post(f"/v1/crises/{crisis['id']}/end", headers=territory.regulator),
                   403)  # fmt: skip
    r = await client.post("/v1/crises", json=crisis_body(territory_id=other_territory.id),
                          headers=territory.coordinator)  # fmt: skip
    assert_problem(r, 404)
    r = await client.post("/v1/crises", json=crisis_body(), headers=territory.regulator)
    assert_problem(r, 403)
    # The ARS, through an admin, names the territory.
    assert_problem(await client.post("/v1/crises", json=crisis_body(), headers=admin), 422)
    r = await client.post("/v1/crises", json=crisis_body(territory_id=other_territory.id),
                          headers=admin)  # fmt: skip
    assert r.status_code == 201, r.text
    listed = (await client.get("/v1/crises", headers=territory.regulator)).json()["items"]
    assert [c["id"] for c in listed] == [crisis["id"]]


@pytest.mark.parametrize(
    "over",
    [
        {"kind": "meteor"},
        {"title": ""},
        {"expected_end_at": (MONDAY - timedelta(hours=3)).isoformat()},  # before the start
        {
            "expected_end_at": (MONDAY - timedelta(hours=1)).isoformat(),
            "started_at": (MONDAY - timedelta(hours=5)).isoformat(),
        },  # already past
        {"communes": ["Nulle-Part-sur-Mer"]},
        {"communes": ["Saint"]},  # many communes
        {"started_at": "demain"},
        {"extra": 1},
    ],
)
async def test_bad_declarations_are_problem_json(client, territory, clock, over):
    clock.set(MONDAY)
    assert_problem(await declare(client, territory, **over), 422)


async def test_communes_by_insee_code_or_name_and_ambiguous_postal_codes(client, territory, clock):
    clock.set(MONDAY)
    r = await declare(client, territory, communes=["15000"])  # Aurillac and Ytrac
    problem = assert_problem(r, 422)
    assert problem["errors"][0]["loc"] == ["body", "communes", 0]
    assert "Ytrac" in problem["errors"][0]["msg"]
    r = await declare(client, territory, communes=["15014", "Ytrac", "aurillac"])
    assert r.status_code == 201, r.text
    assert r.json()["communes"] == ["15014", "15267"]


async def test_who_sees_the_calls(client, territory, world, session, clock):
    crisis, call = await declared_with_call(client, territory, session, clock)
    r = await client.post(
        "/v1/practices", json=practice_body(territory.id, name="Cabinet du Lioran"),
        headers=territory.coordinator,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    neighbour = await world.key("practice", practice_id=uuid.UUID(r.json()["id"]))
    url = f"/v1/crises/{crisis['id']}"
    seen = {}
    for name, key in (("coordinator", territory.coordinator), ("dashboard", territory.dashboard),
                      ("practice", territory.practice), ("neighbour", neighbour),
                      ("regulator", territory.regulator)):  # fmt: skip
        r = await client.get(url, headers=key)
        assert r.status_code == 200, (name, r.text)
        assert r.json()["volunteers_called"] == 1
        seen[name] = [c["id"] for c in r.json()["calls"]]
    assert seen == {
        "coordinator": [call["id"]], "dashboard": [call["id"]], "practice": [call["id"]],
        "neighbour": [], "regulator": [],
    }  # fmt: skip


async def test_calling_again_calls_only_the_volunteers_added_since(
    client, territory, session, clock
):
    crisis, first = await declared_with_call(client, territory, session, clock)
    durand = await second_gp(client, territory)
    url = f"/v1/crises/{crisis['id']}/calls"
    r = await client.post(url, headers=territory.coordinator)
    assert r.status_code == 200, r.text
    assert [c["id"] for c in r.json()["calls"]] == [first["id"]]  # same plan: nobody new
    await write_plan(session, territory.id, [
        volunteer(territory.practitioner_id, email=EMAIL), volunteer(durand),
    ], version=2)  # fmt: skip
    r = await client.post(url, headers=territory.coordinator)
    assert r.status_code == 200, r.text
    calls_now = {c["practitioner_id"]: c["id"] for c in r.json()["calls"]}
    assert calls_now[territory.practitioner_id] == first["id"] and durand in calls_now
    assert r.json()["volunteers_called"] == 2
    assert_problem(await client.post(url, headers=territory.regulator), 403)
    await client.post(f"/v1/crises/{crisis['id']}/end", headers=territory.coordinator)
    assert_problem(await client.post(url, headers=territory.coordinator), 409)


async def test_the_end_is_told_to_the_sas_and_the_called_practices(
    client, territory, session, clock
):
    await register(client, territory.practice, "https://cabinet.example/hooks", ["crisis.ended"])
    await register(client, territory.regulator, "https://sas.example/hooks", ["crisis.ended"])
    crisis, _ = await declared_with_call(client, territory, session, clock)
    r = await client.post(f"/v1/crises/{crisis['id']}/end", headers=territory.coordinator)
    assert r.status_code == 200, r.text
    rows = await session.execute(
        select(WebhookEndpoint.url, OutboxMessage.payload)
        .join(WebhookEndpoint, WebhookEndpoint.id == OutboxMessage.endpoint_id)
        .where(OutboxMessage.event_type == "crisis.ended")
        .order_by(WebhookEndpoint.url)
    )
    told = {url: payload["data"] for url, payload in rows}
    assert set(told) == {"https://cabinet.example/hooks", "https://sas.example/hooks"}
    for data in told.values():
        assert data["crisis"]["id"] == crisis["id"] and data["crisis"]["ended_at"]
        assert (data["slots_closed"], data["slots_kept"]) == (0, 0)


async def test_a_one_off_slot_through_the_api_may_be_crisis_capacity(
    client, territory, other_territory, session, clock
):
    crisis, _ = await declared_with_call(client, territory, session, clock)
    url = f"/v1/practitioners/{territory.practitioner_id}/slots"
    body = {"start": "2030-03-04T11:00:00+01:00", "end": "2030-03-04T11:30:00+01:00",
            "modality": "cabinet", "visibility": "sas", "crisis_id": crisis["id"]}  # fmt: skip
    r = await client.post(url, json={**body, "visibility": "cpts"}, headers=territory.practice)
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "visibility"]
    other = await client.post("/v1/crises", json=crisis_body(), headers=other_territory.coordinator)
    r = await client.post(url, json={**body, "crisis_id": other.json()["id"]},
                          headers=territory.practice)  # fmt: skip
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "crisis_id"]
    r = await client.post(url, json=body, headers=territory.practice)
    assert r.status_code == 201, r.text
    assert r.json()["crisis_id"] == crisis["id"]
    await client.post(f"/v1/crises/{crisis['id']}/end", headers=territory.coordinator)
    r = await client.post(url, json={**body, "start": "2030-03-04T12:00:00+01:00",
                                     "end": "2030-03-04T12:30:00+01:00"},
                          headers=territory.practice)  # fmt: skip
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "crisis_id"]


async def test_the_list_of_crises_is_paged_latest_first(client, territory, clock):
    ids = []
    for day in range(3):
        clock.set(MONDAY + timedelta(days=day))
        r = await declare(client, territory, title=f"Crise {day}",
                          started_at=(MONDAY + timedelta(days=day)).isoformat())  # fmt: skip
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
        end = await client.post(f"/v1/crises/{ids[-1]}/end", headers=territory.coordinator)
        assert end.status_code == 200, end.text
    first = (await client.get("/v1/crises?limit=2", headers=territory.coordinator)).json()
    assert [c["id"] for c in first["items"]] == ids[:0:-1]
    rest = await client.get(f"/v1/crises?limit=2&cursor={first['next_cursor']}",
                            headers=territory.coordinator)  # fmt: skip
    assert [c["id"] for c in rest.json()["items"]] == [ids[0]]
    assert rest.json()["next_cursor"] is None


async def test_a_crisis_answers_in_the_territorys_offset(client, territory, clock):
    clock.set(MONDAY)
    crisis = (await declare(client, territory)).json()
    assert crisis["declared_at"] == "2030-03-04T09:00:00+01:00"
    assert crisis["started_at"] == "2030-03-04T07:00:00+01:00"
    got = (await client.get(f"/v1/crises/{crisis['id']}", headers=territory.coordinator)).json()
    assert got["expected_end_at"] == "2030-03-06T13:00:00+01:00"


async def test_a_sas_linked_to_no_territory_lists_no_crisis(client, world, admin, territory):
    assert (await declare(client, territory)).status_code == 201
    r = await client.post("/v1/regulators", json={"name": "SAS seul", "department": "15"},
                          headers=admin)  # fmt: skip
    lonely = await world.key("regulator", regulator_id=uuid.UUID(r.json()["id"]))
    r = await client.get("/v1/crises", headers=lonely)
    assert r.status_code == 200, r.text
    assert r.json() == {"items": [], "next_cursor": None}


async def test_a_pledge_the_rules_refuse_is_a_422_naming_its_item(
    client, territory, session, clock
):
    clock.set(MONDAY)
    await write_plan(session, territory.id, [volunteer(territory.practitioner_id)])
    assert (await declare(client, territory)).status_code == 201
    call = await session.scalar(select(CrisisCall))
    short = {**PLEDGE, "start_time": "14:00", "end_time": "14:10", "slot_minutes": 20}
    r = await client.post(f"/v1/crisis-calls/{call.id}/open", json={"pledges": [PLEDGE, short]},
                          headers=territory.practice)  # fmt: skip
    problem = assert_problem(r, 422)
    assert problem["errors"][0]["loc"] == ["body", "pledges", 1, "slot_minutes"]
    assert (await session.get(CrisisCall, call.id)).opened_at is None
