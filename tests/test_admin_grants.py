"""Keys that reach patient data, minted by an admin, are visible to the territory's
coordinator: in its activity log and flagged in its key list."""

import uuid


async def _activity(client, t):
    r = await client.get("/v1/activity?type=key.patient_access_granted", headers=t.coordinator)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def test_admin_minted_coordinator_key_is_in_the_territorys_activity_log(
    client, admin, territory, other_territory
):
    r = await client.post(
        "/v1/keys",
        json={"role": "coordinator", "name": "accès admin", "territory_id": territory.id},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    minted = r.json()["id"]
    assert minted in {e["subject_id"] for e in await _activity(client, territory)}
    assert minted not in {e["subject_id"] for e in await _activity(client, other_territory)}


async def test_admin_minted_regulator_key_is_logged_in_every_linked_territory(
    client, admin, territory, other_territory
):
    await client.post(
        f"/v1/territories/{other_territory.id}/regulators",
        json={"regulator_id": territory.regulator_id},
        headers=admin,
    )
    r = await client.post(
        "/v1/keys",
        json={"role": "regulator", "name": "SAS", "regulator_id": territory.regulator_id},
        headers=admin,
    )
    minted = r.json()["id"]
    for t in (territory, other_territory):
        assert minted in {e["subject_id"] for e in await _activity(client, t)}


async def test_coordinator_minted_and_dashboard_keys_are_not_logged_as_admin_grants(
    client, admin, territory
):
    r = await client.post(
        "/v1/keys",
        json={"role": "practice", "name": "cabinet", "practice_id": territory.practice_id},
        headers=territory.coordinator,
    )
    ours = r.json()["id"]
    r = await client.post(
        "/v1/keys",
        json={"role": "dashboard", "name": "tableau", "territory_id": territory.id},
        headers=admin,
    )
    dashboard = r.json()["id"]
    logged = {e["subject_id"] for e in await _activity(client, territory)}
    assert ours not in logged and dashboard not in logged


async def test_coordinator_key_list_flags_keys_minted_by_an_admin(client, admin, territory):
    r = await client.post(
        "/v1/keys",
        json={"role": "coordinator", "name": "accès admin", "territory_id": territory.id},
        headers=admin,
    )
    assert r.json()["minted_by_admin"] is True
    by_admin = r.json()["id"]
    r = await client.post(
        "/v1/keys", json={"role": "dashboard", "name": "tableau"}, headers=territory.coordinator
    )
    assert r.json()["minted_by_admin"] is False
    by_coordinator = r.json()["id"]
    listed = {
        k["id"]: k
        for k in (await client.get("/v1/keys", headers=territory.coordinator)).json()["items"]
    }
    assert listed[by_admin]["minted_by_admin"] is True
    assert listed[by_coordinator]["minted_by_admin"] is False
    assert uuid.UUID(listed[by_coordinator]["created_by"])


async def test_coordinator_keys_page_says_which_keys_an_admin_minted(client, admin, territory):
    from tests.test_web_dashboard import sign_in

    r = await client.post(
        "/v1/keys",
        json={"role": "coordinator", "name": "Accès exploitant", "territory_id": territory.id},
        headers=admin,
    )
    assert r.status_code == 201
    await sign_in(client, territory.coordinator, "/coordination/cles")
    page = (await client.get("/coordination/cles")).text
    row = next(line for line in page.splitlines() if "Accès exploitant" in line)
    assert "un administrateur" in row
