"""Calls for slots per group of communes: the coordinator's floors for groups of communes of its
territory (real communes, each in one group at most), the run that calls only the GPs
practising in a group under its floor, the once-a-day limit across group and territory, and
the webhook `offer.low` naming the group and its communes."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import select

from app.config import Settings
from app.outbox.models import OutboxMessage
from app.unmet_demand.calls import call_message
from app.unmet_demand.models import SlotCall
from tests.conftest import assert_problem, practice_body, practitioner_body
from tests.test_slot_calls import floor, opt_in, run
from tests.test_slot_search import add_slot

URL = "/v1/slot-calls/area-floors"
HAUTES_TERRES = "Hautes Terres"


async def put_area(client, t, name=HAUTES_TERRES, communes=("15187",), value=1, **over):
    return await client.put(
        f"{URL}/{quote(name)}",
        json={"communes": list(communes), "floor": value, **over},
        headers=t.coordinator,
    )


async def saint_flour_gp(client, t) -> str:
    """A second practice, in Saint-Flour (15187), with one GP who accepts calls."""
    r = await client.post(
        "/v1/practices",
        json=practice_body(t.id, name="Cabinet de Saint-Flour", commune_insee="15187",
                           lat=45.0339, lon=3.0931),
        headers=t.coordinator,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    r = await client.post(
        "/v1/practitioners",
        json=practitioner_body(r.json()["id"], family_name="Roux", given_name="Paul"),
        headers=t.coordinator,
    )
    assert r.status_code == 201, r.text
    gp = r.json()["id"]
    r = await opt_in(client, t, gp, key=t.coordinator, email="paul.roux@example.fr")
    assert r.status_code == 204, r.text
    return str(gp)


async def calls_of(session, t) -> dict[str, str | None]:
    """The territory's calls: GP → the group's id (None: the territory's floor)."""
    rows = await session.execute(
        select(SlotCall.practitioner_id, SlotCall.area_id).where(SlotCall.territory_id == t.id)
    )
    return {str(gp): (str(area) if area else None) for gp, area in rows}


async def test_a_group_is_set_read_listed_and_deleted(client, territory):
    r = await put_area(
        client, territory, communes=["Saint-Flour", "Arpajon-sur-Cère (15130)", "15187"], value=3
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == HAUTES_TERRES and body["floor"] == 3 and body["window_hours"] == 48
    assert body["communes"] == [
        {"commune_insee": "15187", "commune_name": "Saint-Flour"},
        {"commune_insee": "15012", "commune_name": "Arpajon-sur-Cère"},
    ]
    r = await client.get(f"{URL}/{quote(HAUTES_TERRES)}", headers=territory.coordinator)
    assert r.status_code == 200 and r.json()["id"] == body["id"]
    r = await client.get(URL, headers=territory.coordinator)
    assert [a["name"] for a in r.json()] == [HAUTES_TERRES]
    r = await client.delete(f"{URL}/{quote(HAUTES_TERRES)}", headers=territory.coordinator)
    assert r.status_code == 204
    assert (await client.get(URL, headers=territory.coordinator)).json() == []


async def test_a_second_put_replaces_the_group_of_that_name(client, territory):
    first = (await put_area(client, territory, communes=["15187"], value=1)).json()
    r = await put_area(client, territory, communes=["15012"], value=5, window_hours=24)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == first["id"]
    assert (r.json()["floor"], r.json()["window_hours"]) == (5, 24)
    assert [c["commune_insee"] for c in r.json()["communes"]] == ["15012"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"communes": ["Nulle-Part-sur-Mer"], "floor": 1}, ["body", "communes", 0]),
        ({"communes": ["15187", "15000"], "floor": 1}, ["body", "communes", 1]),  # 2 communes
        ({"communes": [], "floor": 1}, ["communes"]),
        ({"communes": ["15187"], "floor": -1}, ["floor"]),
        ({"communes": ["15187"], "floor": 1, "window_hours": 0}, ["window_hours"]),
        ({"communes": ["15187"], "floor": 1, "x": 1}, ["x"]),
        ({"floor": 1}, ["communes"]),
    ],
)
async def test_bad_groups_are_422_naming_the_field_and_change_nothing(client, territory, body, loc):
    r = await client.put(f"{URL}/Nord", json=body, headers=territory.coordinator)
    problem = assert_problem(r, 422)
    assert loc in [e["loc"] for e in problem["errors"]]
    assert (await client.get(URL, headers=territory.coordinator)).json() == []


async def test_an_ambiguous_commune_lists_the_candidates(client, territory):
    r = await put_area(client, territory, communes=["15000"])  # Aurillac and Ytrac
    problem = assert_problem(r, 422)
    assert "Ytrac" in problem["errors"][0]["msg"]


@pytest.mark.parametrize("name", ["%20", "x" * 101, "a%0Ab"])
async def test_bad_names_are_422(client, territory, name):
    r = await client.put(
        f"{URL}/{name}", json={"communes": ["15187"], "floor": 1}, headers=territory.coordinator
    )
    assert_problem(r, 422)


async def test_a_commune_in_two_groups_of_a_territory_is_422(client, territory, other_territory):
    assert (await put_area(client, territory, "Est", ["15187"])).status_code == 200
    r = await put_area(client, territory, "Ouest", ["15012", "Saint-Flour"])
    problem = assert_problem(r, 422)
    assert problem["errors"][0]["loc"] == ["body", "communes", 1]
    assert "Est" in problem["errors"][0]["msg"]
    names = [a["name"] for a in (await client.get(URL, headers=territory.coordinator)).json()]
    assert names == ["Est"]
    # Another territory's groups are its own.
    assert (await put_area(client, other_territory, "Est", ["15187"])).status_code == 200


async def test_groups_are_the_coordinators_of_their_territory_only(
    client, territory, other_territory
):
    await put_area(client, territory)
    for key in (territory.practice, territory.regulator, territory.dashboard):
        assert_problem(await client.get(URL, headers=key), 403)
        r = await client.put(f"{URL}/Nord", json={"communes": ["15187"], "floor": 1}, headers=key)
        assert_problem(r, 403)
    theirs = other_territory.coordinator
    assert_problem(await client.get(f"{URL}/{quote(HAUTES_TERRES)}", headers=theirs), 404)
    assert_problem(await client.delete(f"{URL}/{quote(HAUTES_TERRES)}", headers=theirs), 404)
    assert (await client.get(URL, headers=theirs)).json() == []


async def test_an_unknown_group_is_404(client, territory):
    assert_problem(await client.get(f"{URL}/Sud", headers=territory.coordinator), 404)
    assert_problem(await client.delete(f"{URL}/Sud", headers=territory.coordinator), 404)


async def test_a_group_under_its_floor_calls_only_its_gps(client, territory, session):
    await opt_in(client, territory, territory.practitioner_id)  # Aurillac
    roux = await saint_flour_gp(client, territory)
    # Aurillac's free slots do not count for the Saint-Flour group.
    await add_slot(client, territory, territory.practitioner_id, 3)
    await add_slot(client, territory, territory.practitioner_id, 4)
    area = (await put_area(client, territory, communes=["15187"], value=1)).json()
    assert await run(client, territory) == 1
    assert await calls_of(session, territory) == {roux: area["id"]}


async def test_a_group_at_its_floor_calls_nobody(client, territory, session):
    roux = await saint_flour_gp(client, territory)
    await add_slot(client, territory, roux, 3)
    await put_area(client, territory, communes=["15187"], value=1)
    assert await run(client, territory) == 0


async def test_a_gp_called_for_a_group_is_not_called_again_for_the_territory_that_day(
    client, territory, session
):
    await opt_in(client, territory, territory.practitioner_id)
    roux = await saint_flour_gp(client, territory)
    area = (await put_area(client, territory, communes=["15187"], value=1)).json()
    await floor(client, territory, 1)  # the territory is under its floor too
    assert await run(client, territory) == 2
    assert await calls_of(session, territory) == {
        roux: area["id"],
        territory.practitioner_id: None,
    }
    assert await run(client, territory) == 0  # later the same day: nobody again


async def test_the_webhook_names_the_group_and_its_communes(client, territory, session):
    await client.post(
        "/v1/webhooks", json={"url": "https://cabinet.example/hooks"}, headers=territory.practice
    )
    await opt_in(client, territory, territory.practitioner_id)
    await put_area(client, territory, communes=["Aurillac", "15012"], value=1)
    assert await run(client, territory) == 1
    [hook] = list(
        await session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.event_type == "offer.low",
                OutboxMessage.payload["data"]["offer"]["territory_id"].astext == territory.id,
            )
        )
    )
    offer = hook.payload["data"]["offer"]
    assert (offer["area"], offer["communes"]) == (HAUTES_TERRES, ["15014", "15012"])


async def test_a_territory_call_names_no_group(client, territory, session):
    await client.post(
        "/v1/webhooks", json={"url": "https://cabinet.example/hooks"}, headers=territory.practice
    )
    await opt_in(client, territory, territory.practitioner_id)
    await floor(client, territory, 1)
    assert await run(client, territory) == 1
    offer = (
        await session.scalar(
            select(OutboxMessage.payload).where(
                OutboxMessage.event_type == "offer.low",
                OutboxMessage.payload["data"]["offer"]["territory_id"].astext == territory.id,
            )
        )
    )["data"]["offer"]
    assert (offer["area"], offer["communes"]) == (None, None)


async def test_the_log_names_each_calls_group_and_keeps_it_when_the_group_goes(client, territory):
    await opt_in(client, territory, territory.practitioner_id)
    area = (await put_area(client, territory, communes=["15014"], value=1)).json()
    await run(client, territory)
    [call] = (await client.get("/v1/slot-calls", headers=territory.coordinator)).json()
    assert (call["area_id"], call["area"]) == (area["id"], HAUTES_TERRES)
    await client.delete(f"{URL}/{quote(HAUTES_TERRES)}", headers=territory.coordinator)
    [call] = (await client.get("/v1/slot-calls", headers=territory.coordinator)).json()
    assert (call["area_id"], call["area"]) == (None, None)


async def test_the_e_mail_of_a_group_call_names_the_group(client, territory, session):
    await opt_in(client, territory, territory.practitioner_id)
    await put_area(client, territory, communes=["15014"], value=1)
    await run(client, territory)
    call = await session.scalar(select(SlotCall).where(SlotCall.territory_id == territory.id))
    assert call is not None
    message = call_message(Settings(), call, "Europe/Paris", "a@b.fr", "Martin", HAUTES_TERRES)
    assert "dans les communes « Hautes Terres »" in message.get_content()
