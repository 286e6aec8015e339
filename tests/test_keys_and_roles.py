"""API keys and the role boundaries of the directory."""

import uuid

from sqlalchemy import select

from app.directory.models import ApiKey
from app.security import digest
from tests.conftest import assert_problem, practice_body, practitioner_body, territory_body


async def test_missing_authorization_is_a_401_problem(client):
    r = await client.get("/v1/territories")
    assert_problem(r, 401, "/unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"


async def test_unknown_key_is_a_401(client):
    assert_problem(
        await client.get("/v1/territories", headers={"Authorization": "Bearer crn_nope"}), 401
    )


async def test_non_bearer_scheme_is_a_401(client):
    assert_problem(await client.get("/v1/territories", headers={"Authorization": "Basic abc"}), 401)


async def test_created_key_is_shown_once_and_stored_as_digest(client, territory, session):
    r = await client.post(
        "/v1/keys",
        json={"role": "dashboard", "name": "Tableau ARS"},
        headers=territory.coordinator,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["key"]
    assert secret.startswith("crn_") and len(secret) > 40
    row = await session.scalar(select(ApiKey).where(ApiKey.id == uuid.UUID(created["id"])))
    assert row.digest == digest(secret)
    assert secret not in {row.digest, row.prefix, row.name}
    listed = await client.get("/v1/keys", headers=territory.coordinator)
    assert all("key" not in item for item in listed.json()["items"])
    assert created["territory_id"] == territory.id


async def test_new_key_works_and_revoked_key_stops_at_once(client, territory):
    r = await client.post(
        "/v1/keys",
        json={"role": "practice", "name": "Secrétariat", "practice_id": territory.practice_id},
        headers=territory.coordinator,
    )
    key = {"Authorization": f"Bearer {r.json()['key']}"}
    assert (
        await client.get(f"/v1/practices/{territory.practice_id}", headers=key)
    ).status_code == 200
    r = await client.delete(f"/v1/keys/{r.json()['id']}", headers=territory.coordinator)
    assert r.status_code == 204
    assert_problem(await client.get(f"/v1/practices/{territory.practice_id}", headers=key), 401)


async def test_coordinator_cannot_create_admin_keys(client, territory):
    r = await client.post(
        "/v1/keys", json={"role": "admin", "name": "x"}, headers=territory.coordinator
    )
    assert_problem(r, 403)


async def test_coordinator_cannot_key_another_territorys_practice(
    client, territory, other_territory
):
    r = await client.post(
        "/v1/keys",
        json={"role": "practice", "name": "x", "practice_id": other_territory.practice_id},
        headers=territory.coordinator,
    )
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "practice_id"]


async def test_coordinator_cannot_revoke_another_territorys_key(client, territory, other_territory):
    r = await client.post(
        "/v1/keys", json={"role": "dashboard", "name": "x"}, headers=other_territory.coordinator
    )
    assert_problem(
        await client.delete(f"/v1/keys/{r.json()['id']}", headers=territory.coordinator), 404
    )


async def test_key_scope_must_match_its_role(client, admin, territory):
    r = await client.post("/v1/keys", json={"role": "practice", "name": "x"}, headers=admin)
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "practice_id"]
    r = await client.post(
        "/v1/keys",
        json={"role": "admin", "name": "x", "territory_id": territory.id},
        headers=admin,
    )
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "territory_id"]


async def test_regulator_key_needs_a_regulator_linked_to_the_coordinators_territory(
    client, territory, other_territory
):
    r = await client.post(
        "/v1/keys",
        json={"role": "regulator", "name": "x", "regulator_id": other_territory.regulator_id},
        headers=territory.coordinator,
    )
    assert_problem(r, 422)
    r = await client.post(
        "/v1/keys",
        json={"role": "regulator", "name": "x", "regulator_id": territory.regulator_id},
        headers=territory.coordinator,
    )
    assert r.status_code == 201, r.text


async def test_only_admin_creates_territories(client, territory):
    for key in (
        territory.coordinator,
        territory.practice,
        territory.regulator,
        territory.dashboard,
    ):
        assert_problem(
            await client.post("/v1/territories", json=territory_body(), headers=key), 403
        )


async def test_coordinator_sees_only_its_territory(client, territory, other_territory):
    r = await client.get("/v1/territories", headers=territory.coordinator)
    assert [t["id"] for t in r.json()["items"]] == [territory.id]
    assert_problem(
        await client.get(f"/v1/territories/{other_territory.id}", headers=territory.coordinator),
        404,
    )


async def test_another_territorys_practice_is_not_revealed(client, territory, other_territory):
    for method in ("GET", "PATCH", "DELETE"):
        r = await client.request(
            method,
            f"/v1/practices/{other_territory.practice_id}",
            json={"name": "x"} if method == "PATCH" else None,
            headers=territory.coordinator,
        )
        assert_problem(r, 404)


async def test_another_territorys_practitioner_is_not_revealed(client, territory, other_territory):
    path = f"/v1/practitioners/{other_territory.practitioner_id}"
    assert_problem(await client.get(path, headers=territory.coordinator), 404)
    assert_problem(await client.get(path, headers=territory.regulator), 404)
    assert_problem(
        await client.patch(path, json={"mt_capacity": 3}, headers=territory.coordinator), 404
    )


async def test_coordinator_cannot_create_a_practice_elsewhere(client, territory, other_territory):
    r = await client.post(
        "/v1/practices", json=practice_body(other_territory.id), headers=territory.coordinator
    )
    assert_problem(r, 422)


async def test_practice_key_cannot_touch_another_practice(client, territory, admin):
    r = await client.post("/v1/practices", json=practice_body(territory.id), headers=admin)
    neighbour = r.json()["id"]
    assert_problem(await client.get(f"/v1/practices/{neighbour}", headers=territory.practice), 404)
    assert_problem(
        await client.patch(
            f"/v1/practices/{neighbour}", json={"name": "x"}, headers=territory.practice
        ),
        404,
    )
    r = await client.get("/v1/practices", headers=territory.practice)
    assert [p["id"] for p in r.json()["items"]] == [territory.practice_id]


async def test_practice_updates_its_own_contact_details(client, territory):
    r = await client.patch(
        f"/v1/practices/{territory.practice_id}",
        json={"phone": "04 71 48 12 34"},
        headers=territory.practice,
    )
    assert r.status_code == 200, r.text
    assert r.json()["phone"] == "04 71 48 12 34"


async def test_practice_cannot_create_practitioners(client, territory):
    r = await client.post(
        "/v1/practitioners",
        json=practitioner_body(territory.practice_id),
        headers=territory.practice,
    )
    assert_problem(r, 403)


async def test_regulator_sees_linked_territories_only(client, territory, other_territory):
    r = await client.get("/v1/territories", headers=territory.regulator)
    assert [t["id"] for t in r.json()["items"]] == [territory.id]
    r = await client.get("/v1/practices", headers=territory.regulator)
    assert {p["territory_id"] for p in r.json()["items"]} == {territory.id}


async def test_regulator_linked_to_two_territories_sees_both(
    client, admin, territory, other_territory
):
    r = await client.post(
        f"/v1/territories/{other_territory.id}/regulators",
        json={"regulator_id": territory.regulator_id},
        headers=admin,
    )
    assert r.status_code == 204
    r = await client.get("/v1/territories", headers=territory.regulator)
    assert {t["id"] for t in r.json()["items"]} == {territory.id, other_territory.id}


async def test_regulator_cannot_write_the_directory(client, territory):
    r = await client.patch(
        f"/v1/practitioners/{territory.practitioner_id}",
        json={"mt_capacity": 5},
        headers=territory.regulator,
    )
    assert_problem(r, 403)


async def test_dashboard_key_cannot_list_keys_or_regulators(client, territory):
    assert_problem(await client.get("/v1/keys", headers=territory.dashboard), 403)
    assert_problem(await client.get("/v1/regulators", headers=territory.dashboard), 403)


async def test_dashboard_key_cannot_write_anything(client, territory):
    r = await client.post(
        "/v1/practices", json=practice_body(territory.id), headers=territory.dashboard
    )
    assert_problem(r, 403)


async def test_sas_platform_key_reads_slots_but_not_the_directory(client, world, territory):
    platform = await world.key("sas_platform")
    assert (await client.get("/v1/slots", headers=platform)).status_code == 200
    for path in (
        "/v1/territories",
        f"/v1/territories/{territory.id}",
        "/v1/practices",
        f"/v1/practitioners/{territory.practitioner_id}",
        "/v1/regulators",
        "/v1/bookings",
        "/v1/mt-requests",
        "/v1/keys",
    ):
        assert_problem(await client.get(path, headers=platform), 403)


async def test_only_admin_creates_sas_platform_keys(client, territory, admin):
    r = await client.post(
        "/v1/keys", json={"role": "sas_platform", "name": "PFN SAS"}, headers=territory.coordinator
    )
    assert_problem(r, 403)
    r = await client.post(
        "/v1/keys", json={"role": "sas_platform", "name": "PFN SAS"}, headers=admin
    )
    assert r.status_code == 201 and r.json()["role"] == "sas_platform"
