"""Directory CRUD per the contract."""

from tests.conftest import assert_problem, practice_body, practitioner_body, territory_body


async def test_territory_created_with_overseas_zone_renders_local_offset(client, admin):
    r = await client.post(
        "/v1/territories",
        json=territory_body(name="CPTS Sud Réunion", timezone="Indian/Reunion", department="974"),
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert r.json()["created_at"].endswith("+04:00")


async def test_practitioner_defaults(client, territory):
    r = await client.post(
        "/v1/practitioners",
        json=practitioner_body(territory.practice_id),
        headers=territory.coordinator,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["profession"] == "general_practitioner"
    assert (body["accepts_overbooking"], body["overbooking_daily_cap"], body["mt_capacity"]) == (
        False,
        0,
        0,
    )
    assert body["territory_id"] == territory.id


async def test_duplicate_rpps_in_a_territory_is_a_409(client, territory):
    body = practitioner_body(territory.practice_id, rpps="10001234567")
    assert (
        await client.post("/v1/practitioners", json=body, headers=territory.coordinator)
    ).status_code == 201
    r = await client.post("/v1/practitioners", json=body, headers=territory.coordinator)
    problem = assert_problem(r, 409)
    assert "10001234567" in problem["detail"]
    assert problem["existing_id"]


async def test_same_rpps_in_two_territories_is_allowed(client, territory, other_territory):
    for t in (territory, other_territory):
        r = await client.post(
            "/v1/practitioners",
            json=practitioner_body(t.practice_id, rpps="10009999999"),
            headers=t.coordinator,
        )
        assert r.status_code == 201, r.text


async def test_rpps_must_be_eleven_digits(client, territory):
    for bad in ("1234", "1000123456a", "100012345678"):
        r = await client.post(
            "/v1/practitioners",
            json=practitioner_body(territory.practice_id, rpps=bad),
            headers=territory.coordinator,
        )
        assert assert_problem(r, 422)["errors"][0]["loc"] == ["rpps"]


async def test_patch_changes_only_given_fields(client, territory):
    path = f"/v1/practitioners/{territory.practitioner_id}"
    r = await client.patch(
        path,
        json={"accepts_overbooking": True, "overbooking_daily_cap": 2},
        headers=territory.coordinator,
    )
    assert r.status_code == 200, r.text
    assert r.json()["family_name"] == "Martin"
    assert r.json()["overbooking_daily_cap"] == 2


async def test_patch_cannot_null_a_required_field(client, territory):
    r = await client.patch(
        f"/v1/practitioners/{territory.practitioner_id}",
        json={"family_name": None},
        headers=territory.coordinator,
    )
    assert_problem(r, 422)


async def test_mt_capacity_put(client, territory):
    r = await client.put(
        f"/v1/practitioners/{territory.practitioner_id}/mt-capacity",
        json={"mt_capacity": 12},
        headers=territory.coordinator,
    )
    assert r.status_code == 200 and r.json()["mt_capacity"] == 12
    r = await client.put(
        f"/v1/practitioners/{territory.practitioner_id}/mt-capacity",
        json={"mt_capacity": -1},
        headers=territory.coordinator,
    )
    assert_problem(r, 422)


async def test_practitioner_cannot_move_to_another_territory(
    client, territory, other_territory, admin
):
    r = await client.patch(
        f"/v1/practitioners/{territory.practitioner_id}",
        json={"practice_id": other_territory.practice_id},
        headers=admin,
    )
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "practice_id"]


async def test_deleting_a_practice_with_practitioners_is_a_409(client, territory):
    r = await client.delete(f"/v1/practices/{territory.practice_id}", headers=territory.coordinator)
    assert_problem(r, 409)


async def test_delete_practitioner_then_it_is_gone(client, territory):
    path = f"/v1/practitioners/{territory.practitioner_id}"
    assert (await client.delete(path, headers=territory.coordinator)).status_code == 204
    assert_problem(await client.get(path, headers=territory.coordinator), 404)


async def test_lists_paginate_with_cursor(client, territory):
    for i in range(5):
        r = await client.post(
            "/v1/practices",
            json=practice_body(territory.id, name=f"Cabinet {i}"),
            headers=territory.coordinator,
        )
        assert r.status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (
            await client.get("/v1/practices", params=params, headers=territory.coordinator)
        ).json()
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 6


async def test_practice_filters(client, territory):
    await client.post(
        "/v1/practices",
        json=practice_body(territory.id, name="Cabinet de Mauriac", commune_insee="15120"),
        headers=territory.coordinator,
    )
    r = await client.get("/v1/practices?commune_insee=15120", headers=territory.coordinator)
    assert [p["name"] for p in r.json()["items"]] == ["Cabinet de Mauriac"]
    r = await client.get("/v1/practices?name=mauriac", headers=territory.coordinator)
    assert len(r.json()["items"]) == 1


async def test_deleting_a_territory_with_practices_is_a_409(client, admin, territory):
    assert_problem(await client.delete(f"/v1/territories/{territory.id}", headers=admin), 409)


async def test_regulator_lists_its_territories(client, admin, territory):
    r = await client.get(f"/v1/regulators/{territory.regulator_id}", headers=territory.regulator)
    assert r.json()["territory_ids"] == [territory.id]


async def test_only_admin_changes_a_territorys_timezone(client, territory):
    r = await client.patch(
        f"/v1/territories/{territory.id}",
        json={"timezone": "Europe/Brussels"},
        headers=territory.coordinator,
    )
    assert_problem(r, 403)
    r = await client.patch(
        f"/v1/territories/{territory.id}", json={"population": 42000}, headers=territory.coordinator
    )
    assert r.status_code == 200 and r.json()["population"] == 42000
