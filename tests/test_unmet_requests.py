"""Unmet SNP requests through the API: recorded by regulators in their territories, read by
coordinators and dashboards, without patient identity."""

import uuid

from sqlalchemy import func, select

from app.activity.models import ActivityEvent
from app.unmet_demand.models import UnmetRequest
from tests.conftest import assert_problem, practice_body


async def post_unmet(client, key, **body):
    body = {"commune_insee": "15014", "reason": "no_slot", **body}
    body = {k: v for k, v in body.items() if v is not None}
    return await client.post(
        "/v1/unmet-requests",
        json=body,
        headers={**key, "Idempotency-Key": str(uuid.uuid4())},
    )


async def unmet_count(session) -> int:
    return await session.scalar(select(func.count()).select_from(UnmetRequest))


async def test_regulator_records_an_unmet_request_in_the_commune_territory(
    client, territory, session
):
    r = await post_unmet(
        client,
        territory.regulator,
        modality="visite",
        wanted_within_hours=24,
        reason="no_suitable_slot",
        sas_case_ref="SAS-2026-0042",
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["territory_id"] == territory.id
    assert body["regulator_id"] == territory.regulator_id
    assert body["kind"] == "declared"
    assert body["commune_insee"] == "15014" and body["near"] is None
    assert (body["modality"], body["wanted_within_hours"]) == ("visite", 24)
    assert body["reason"] == "no_suitable_slot" and body["sas_case_ref"] == "SAS-2026-0042"
    assert body["recorded_at"].endswith(("+01:00", "+02:00"))
    assert "patient" not in body


async def test_recording_writes_an_activity_event_without_the_case_reference(
    client, territory, session
):
    r = await post_unmet(client, territory.regulator, sas_case_ref="SAS-2026-0042")
    event = await session.scalar(
        select(ActivityEvent).where(ActivityEvent.subject_id == uuid.UUID(r.json()["id"]))
    )
    assert event is not None and event.type == "unmet.recorded"
    assert str(event.territory_id) == territory.id
    assert event.data["reason"] == "no_slot" and event.data["commune_insee"] == "15014"
    assert "SAS-2026-0042" not in str(event.data)


async def test_a_point_belongs_to_the_territory_and_commune_of_the_nearest_practice(
    client, territory
):
    r = await post_unmet(client, territory.regulator, commune_insee=None,
                         near={"lat": 44.93, "lon": 2.44})  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["territory_id"] == territory.id
    assert r.json()["commune_insee"] == "15014"
    assert r.json()["near"] == {"lat": 44.93, "lon": 2.44}


async def test_same_idempotency_key_replays_and_a_different_body_is_422(client, territory, session):
    headers = {**territory.regulator, "Idempotency-Key": "unmet-1"}
    body = {"commune_insee": "15014", "reason": "too_far"}
    first = await client.post("/v1/unmet-requests", json=body, headers=headers)
    again = await client.post("/v1/unmet-requests", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    other = await client.post(
        "/v1/unmet-requests", json={**body, "reason": "no_slot"}, headers=headers
    )
    assert_problem(other, 422)
    assert await unmet_count(session) == 1


async def test_the_idempotency_key_is_required(client, territory, session):
    r = await client.post(
        "/v1/unmet-requests",
        json={"commune_insee": "15014", "reason": "no_slot"},
        headers=territory.regulator,
    )
    assert_problem(r, 422)
    assert await unmet_count(session) == 0


async def test_bad_input_is_a_problem_and_records_nothing(client, territory, session):
    cases = [
        {"near": {"lat": 44.9, "lon": 2.4}},  # both a commune and a point
        {"commune_insee": None},  # neither
        {"reason": "bored"},
        {"wanted_within_hours": 0},
        {"wanted_within_hours": 10_000},
        {"modality": "drone"},
        {"commune_insee": "1501"},
        {"patient": {"family_name": "Martin"}},  # no patient identity: unknown field
        {"sas_case_ref": "x\u0000y"},
    ]
    for case in cases:
        body = assert_problem(await post_unmet(client, territory.regulator, **case), 422)
        assert body["errors"], case
    assert await unmet_count(session) == 0


async def test_only_regulators_record(client, territory, session):
    for key in (territory.coordinator, territory.practice, territory.dashboard):
        assert_problem(await post_unmet(client, key), 403)
    assert await unmet_count(session) == 0


async def test_a_commune_of_another_territory_is_403(
    client, territory, other_territory, admin, session
):
    r = await client.post(
        "/v1/practices", json=practice_body(other_territory.id, commune_insee="48095"),
        headers=admin,
    )  # fmt: skip
    assert r.status_code == 201
    assert_problem(await post_unmet(client, territory.regulator, commune_insee="48095"), 403)
    assert_problem(
        await post_unmet(client, territory.regulator, territory_id=other_territory.id), 403
    )
    assert await unmet_count(session) == 0


async def test_a_sas_of_several_territories_names_the_territory_of_an_unknown_commune(
    client, territory, other_territory, admin
):
    r = await client.post(
        f"/v1/territories/{other_territory.id}/regulators",
        json={"regulator_id": territory.regulator_id},
        headers=admin,
    )
    assert r.status_code == 204
    # A commune with no practice (where the offer is missing most).
    assert_problem(await post_unmet(client, territory.regulator, commune_insee="15100"), 422)
    r = await post_unmet(
        client, territory.regulator, commune_insee="15100", territory_id=other_territory.id
    )
    assert r.status_code == 201, r.text
    assert r.json()["territory_id"] == other_territory.id
    # A commune known by one of its territories only needs no territory_id.
    r = await client.post(
        "/v1/practices", json=practice_body(other_territory.id, commune_insee="48095"),
        headers=admin,
    )  # fmt: skip
    r = await post_unmet(client, territory.regulator, commune_insee="48095")
    assert r.json()["territory_id"] == other_territory.id
    # Both territories have practices in 15014: which one is for the regulator to say.
    assert_problem(await post_unmet(client, territory.regulator, commune_insee="15014"), 422)


async def test_a_sas_of_one_territory_records_a_commune_without_practice_there(client, territory):
    r = await post_unmet(client, territory.regulator, commune_insee="15100")
    assert r.status_code == 201, r.text
    assert r.json()["territory_id"] == territory.id


async def test_coordinators_read_their_territory_only(client, territory, other_territory):
    mine = (await post_unmet(client, territory.regulator)).json()
    theirs = (await post_unmet(client, other_territory.regulator)).json()
    r = await client.get("/v1/unmet-requests", headers=territory.coordinator)
    assert r.status_code == 200, r.text
    assert [i["id"] for i in r.json()["items"]] == [mine["id"]]
    assert r.json()["next_cursor"] is None
    ok = await client.get(f"/v1/unmet-requests/{mine['id']}", headers=territory.coordinator)
    assert ok.json()["id"] == mine["id"]
    assert_problem(
        await client.get(f"/v1/unmet-requests/{theirs['id']}", headers=territory.coordinator),
        404,
    )


async def test_the_dashboard_reads_counts_without_the_case_reference(client, territory):
    await post_unmet(client, territory.regulator, sas_case_ref="SAS-1")
    items = (await client.get("/v1/unmet-requests", headers=territory.dashboard)).json()["items"]
    assert len(items) == 1 and items[0]["sas_case_ref"] is None


async def test_practices_cannot_read_unmet_requests(client, territory):
    assert_problem(await client.get("/v1/unmet-requests", headers=territory.practice), 403)


async def test_the_list_filters_by_period_and_pages(client, territory, session):
    ids = [(await post_unmet(client, territory.regulator)).json()["id"] for _ in range(3)]
    page = (await client.get("/v1/unmet-requests?limit=2", headers=territory.coordinator)).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = (
        await client.get(
            f"/v1/unmet-requests?limit=2&cursor={page['next_cursor']}",
            headers=territory.coordinator,
        )
    ).json()
    assert [i["id"] for i in page["items"] + rest["items"]] == ids
    future = await client.get(
        "/v1/unmet-requests?from=2099-01-01T00:00:00Z", headers=territory.coordinator
    )
    assert future.json()["items"] == []
    assert_problem(
        await client.get(
            "/v1/unmet-requests?from=2027-01-02T00:00:00Z&to=2027-01-01T00:00:00Z",
            headers=territory.coordinator,
        ),
        422,
    )
    assert_problem(
        await client.get("/v1/unmet-requests?cursor=garbage", headers=territory.coordinator), 422
    )


async def test_a_point_counts_among_the_sas_territories_even_near_another_cpts(
    client, territory, other_territory, admin
):
    r = await client.post(
        "/v1/practices",
        json=practice_body(other_territory.id, commune_insee="15187", lat=45.03, lon=2.60),
        headers=admin,
    )
    assert r.status_code == 201
    r = await post_unmet(client, territory.regulator, commune_insee=None,
                         near={"lat": 45.03, "lon": 2.60})  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["territory_id"] == territory.id and r.json()["commune_insee"] == "15014"
