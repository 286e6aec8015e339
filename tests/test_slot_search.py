"""GET /v1/slots: exactly the bookable slots a careful human would list."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import text

from app.db import make_engine, make_sessionmaker
from app.main import create_app
from app.scheduling.models import Slot
from tests.conftest import World, assert_problem, make_territory, practice_body, practitioner_body

PARIS = ZoneInfo("Europe/Paris")


def at(hours: float) -> datetime:
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return (base + timedelta(hours=hours)).astimezone(PARIS)


async def add_slot(client, t, practitioner_id, hours, minutes=30, **over):
    start = at(hours)
    r = await client.post(
        f"/v1/practitioners/{practitioner_id}/slots",
        json={
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=minutes)).isoformat(),
            "modality": "cabinet",
            "visibility": "sas",
            **over,
        },
        headers=t.coordinator,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def test_default_window_is_the_next_48_hours(client, territory):
    inside = await add_slot(client, territory, territory.practitioner_id, 47)
    await add_slot(client, territory, territory.practitioner_id, 49)
    r = await client.get("/v1/slots", headers=territory.regulator)
    assert r.status_code == 200, r.text
    assert [s["id"] for s in r.json()["items"]] == [inside]


async def test_item_shape_and_local_offset(client, territory):
    await add_slot(client, territory, territory.practitioner_id, 5)
    item = (await client.get("/v1/slots", headers=territory.regulator)).json()["items"][0]
    assert set(item) >= {
        "id",
        "start",
        "end",
        "modality",
        "visibility",
        "status",
        "practitioner",
        "practice",
    }
    assert item["status"] == "free"
    assert set(item["practitioner"]) == {"id", "family_name", "given_name", "rpps"}
    assert set(item["practice"]) == {
        "id",
        "name",
        "address",
        "commune_insee",
        "commune_name",
        "lat",
        "lon",
    }
    start = datetime.fromisoformat(item["start"])
    assert start.utcoffset() == start.astimezone(PARIS).utcoffset()


async def test_window_over_seven_days_is_a_422(client, territory):
    r = await client.get(
        "/v1/slots",
        params={"from": at(1).isoformat(), "to": (at(1) + timedelta(days=7, hours=1)).isoformat()},
        headers=territory.regulator,
    )
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["query", "to"]


async def test_from_without_offset_is_a_422(client, territory):
    r = await client.get(
        "/v1/slots", params={"from": "2030-01-01T10:00:00"}, headers=territory.regulator
    )
    assert_problem(r, 422)


async def test_past_slots_are_never_returned(client, territory, session):
    sid = await add_slot(client, territory, territory.practitioner_id, 2)
    slot = await session.get(Slot, sid)
    slot.start, slot.end = at(-1), at(-0.5)
    await session.commit()
    r = await client.get(
        "/v1/slots", params={"from": at(-3).isoformat()}, headers=territory.regulator
    )
    assert r.json()["items"] == []


async def test_only_bookable_slots_are_returned(client, territory, session):
    free = await add_slot(client, territory, territory.practitioner_id, 2)
    expired_hold = await add_slot(client, territory, territory.practitioner_id, 3)
    live_hold = await add_slot(client, territory, territory.practitioner_id, 4)
    booked = await add_slot(client, territory, territory.practitioner_id, 5)
    now = datetime.now(UTC)
    for sid, status, expires in (
        (expired_hold, "held", now - timedelta(seconds=1)),
        (live_hold, "held", now + timedelta(minutes=5)),
        (booked, "booked", None),
    ):
        slot = await session.get(Slot, sid)
        slot.status, slot.hold_expires_at = status, expires
    await session.commit()
    r = await client.get("/v1/slots", headers=territory.regulator)
    assert [s["id"] for s in r.json()["items"]] == [free, expired_hold]


async def test_regulator_sees_sas_and_public_but_not_cpts_slots(client, territory):
    sas = await add_slot(client, territory, territory.practitioner_id, 2, visibility="sas")
    await add_slot(client, territory, territory.practitioner_id, 3, visibility="cpts")
    public = await add_slot(client, territory, territory.practitioner_id, 4, visibility="public")
    r = await client.get("/v1/slots", headers=territory.regulator)
    assert [s["id"] for s in r.json()["items"]] == [sas, public]
    r = await client.get("/v1/slots", headers=territory.practice)
    assert len(r.json()["items"]) == 3


async def test_regulator_never_sees_unlinked_territories(client, territory, other_territory):
    await add_slot(client, other_territory, other_territory.practitioner_id, 2)
    r = await client.get("/v1/slots", headers=territory.regulator)
    assert r.json()["items"] == []


async def test_dashboard_key_cannot_search(client, territory):
    assert_problem(await client.get("/v1/slots", headers=territory.dashboard), 403)


async def test_filters_modality_commune_and_practitioner(client, territory):
    tele = await add_slot(
        client, territory, territory.practitioner_id, 2, modality="teleconsultation"
    )
    await add_slot(client, territory, territory.practitioner_id, 3)
    r = await client.get("/v1/slots?modality=teleconsultation", headers=territory.regulator)
    assert [s["id"] for s in r.json()["items"]] == [tele]
    r = await client.get("/v1/slots?commune_insee=15120", headers=territory.regulator)
    assert r.json()["items"] == []
    r = await client.get(
        f"/v1/slots?practitioner_id={territory.practitioner_id}", headers=territory.regulator
    )
    assert len(r.json()["items"]) == 2


async def test_near_sorts_same_start_by_distance_and_radius_filters(client, territory):
    # A second practice 40 km away (Mauriac) and one nearby (Arpajon-sur-Cère).
    far_practice = (
        await client.post(
            "/v1/practices",
            json=practice_body(
                territory.id,
                name="Cabinet de Mauriac",
                commune_insee="15120",
                lat=45.2181,
                lon=2.3336,
            ),
            headers=territory.coordinator,
        )
    ).json()["id"]
    far_gp = (
        await client.post(
            "/v1/practitioners", json=practitioner_body(far_practice), headers=territory.coordinator
        )
    ).json()["id"]
    far_slot = await add_slot(client, territory, far_gp, 2)
    near_slot = await add_slot(client, territory, territory.practitioner_id, 2)
    r = await client.get(
        "/v1/slots", params={"near": "44.9264,2.4396"}, headers=territory.regulator
    )
    items = r.json()["items"]
    assert [s["id"] for s in items] == [near_slot, far_slot]
    assert items[0]["distance_km"] < 1 and 30 < items[1]["distance_km"] < 40
    r = await client.get(
        "/v1/slots", params={"near": "44.9264,2.4396", "radius_km": 10}, headers=territory.regulator
    )
    assert [s["id"] for s in r.json()["items"]] == [near_slot]


async def test_bad_near_and_radius_without_near_are_422(client, territory):
    assert_problem(await client.get("/v1/slots?near=abc", headers=territory.regulator), 422)
    assert_problem(await client.get("/v1/slots?near=95,2", headers=territory.regulator), 422)
    assert_problem(await client.get("/v1/slots?radius_km=5", headers=territory.regulator), 422)


async def test_cursor_pagination_walks_every_slot_once(client, territory):
    ids = [await add_slot(client, territory, territory.practitioner_id, h) for h in range(2, 9)]
    seen, cursor = [], None
    while True:
        params = {"limit": 3, "near": "45,2.4", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/slots", params=params, headers=territory.regulator)).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids


async def test_rule_change_shows_in_search_at_once(client, territory):
    path = f"/v1/practitioners/{territory.practitioner_id}/availability-rules"
    r = await client.post(
        path,
        json={
            "rrule": "FREQ=DAILY",
            "start_time": "00:00",
            "end_time": "00:00",
            "slot_minutes": 60,
            "modality": "visite",
            "visibility": "sas",
            "valid_from": (datetime.now(UTC) - timedelta(days=1)).date().isoformat(),
        },
        headers=territory.practice,
    )
    assert r.status_code == 201, r.text
    r = await client.get("/v1/slots?limit=500", headers=territory.regulator)
    assert 46 <= len(r.json()["items"]) <= 48
    await client.delete(
        f"{path}/{(await client.get(path, headers=territory.practice)).json()[0]['id']}",
        headers=territory.practice,
    )
    assert (await client.get("/v1/slots", headers=territory.regulator)).json()["items"] == []


async def test_search_on_a_real_engine_reads_outside_a_transaction(database_url, settings):
    """With the service's own sessions (not the tests' rolled-back connection), the search
    reads in autocommit mode, and the pooled connection is transactional again afterwards."""
    engine = make_engine(database_url, settings, pool_size=1, max_overflow=0, pool_timeout=5)
    factory = make_sessionmaker(engine)
    app = create_app(settings)
    app.state.sessionmaker = factory
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            async with factory() as session:
                world = World(session)
                admin = await world.key("admin")
                t = await make_territory(client, world, admin)
            slot_id = await add_slot(client, t, t.practitioner_id, 3)
            r = await client.get("/v1/slots", headers=t.regulator)
            assert r.status_code == 200, r.text
            assert [s["id"] for s in r.json()["items"]] == [slot_id]
        async with factory() as session:
            raw = await (await session.connection()).get_raw_connection()
            assert raw.dbapi_connection.isolation_level != "autocommit"
            await session.execute(text("CREATE TEMP TABLE t_rollback (x int)"))
            await session.rollback()
            missing = await session.scalar(text("SELECT to_regclass('pg_temp.t_rollback')"))
            assert missing is None  # the DDL was in a transaction, rolled back
    finally:
        await engine.dispose()
