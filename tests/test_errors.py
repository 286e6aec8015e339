"""The error contract: every bad input is an RFC 9457 problem and changes nothing."""

import uuid

from sqlalchemy import func, select

from app.directory.models import Practice, Territory
from tests.conftest import assert_problem, practice_body, territory_body


async def _count(session, model):
    return await session.scalar(select(func.count()).select_from(model))


async def test_unknown_route_is_a_404_problem(client):
    assert_problem(await client.get("/v1/nothing-here"), 404, "/not-found")


async def test_wrong_method_is_a_405_problem(client):
    assert_problem(await client.put("/health/live"), 405, "/method-not-allowed")


async def test_malformed_json_is_a_400_problem_and_writes_nothing(client, admin, session):
    before = await _count(session, Territory)
    r = await client.post(
        "/v1/territories",
        content=b'{"name": "x", ',
        headers={**admin, "content-type": "application/json"},
    )
    body = assert_problem(r, 400, "/malformed-json")
    assert "JSON" in body["detail"]
    assert await _count(session, Territory) == before


async def test_unknown_field_is_a_422_naming_the_field(client, admin, session):
    before = await _count(session, Territory)
    r = await client.post("/v1/territories", json=territory_body(colour="blue"), headers=admin)
    body = assert_problem(r, 422, "/validation-error")
    assert body["errors"] == [{"loc": ["colour"], "msg": "unknown field"}]
    assert await _count(session, Territory) == before


async def test_missing_field_is_a_422_with_its_location(client, admin):
    r = await client.post("/v1/territories", json={"name": "x"}, headers=admin)
    body = assert_problem(r, 422)
    assert {tuple(e["loc"]) for e in body["errors"]} == {("timezone",), ("department",)}


async def test_bad_timezone_is_a_422(client, admin):
    r = await client.post(
        "/v1/territories", json=territory_body(timezone="Europe/Atlantis"), headers=admin
    )
    body = assert_problem(r, 422)
    assert body["errors"][0]["loc"] == ["timezone"]
    assert "IANA" in body["errors"][0]["msg"]


async def test_bad_uuid_in_path_is_a_422(client, admin):
    r = await client.get("/v1/territories/not-a-uuid", headers=admin)
    body = assert_problem(r, 422)
    assert body["errors"][0]["loc"] == ["path", "territory_id"]


async def test_oversized_body_is_a_413_and_writes_nothing(client, admin, session):
    before = await _count(session, Territory)
    r = await client.post("/v1/territories", json=territory_body(name="x" * 100_000), headers=admin)
    assert_problem(r, 413, "/payload-too-large")
    assert await _count(session, Territory) == before


async def test_oversized_chunked_body_is_a_413(client, admin):
    async def chunks():
        for _ in range(100):
            yield b"x" * 1000

    r = await client.post(
        "/v1/territories",
        content=chunks(),
        headers={**admin, "content-type": "application/json"},
    )
    assert_problem(r, 413)


async def test_body_that_is_not_an_object_is_a_422(client, admin):
    r = await client.post("/v1/territories", json=[1, 2], headers=admin)
    assert_problem(r, 422)


async def test_out_of_range_coordinates_are_a_422_and_write_nothing(client, territory, session):
    before = await _count(session, Practice)
    r = await client.post(
        "/v1/practices",
        json=practice_body(territory.id, lat=123.0),
        headers=territory.coordinator,
    )
    body = assert_problem(r, 422)
    assert body["errors"][0]["loc"] == ["lat"]
    assert await _count(session, Practice) == before


async def test_bad_insee_code_is_a_422(client, territory):
    r = await client.post(
        "/v1/practices",
        json=practice_body(territory.id, commune_insee="1501"),
        headers=territory.coordinator,
    )
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["commune_insee"]


async def test_corsican_insee_code_is_accepted(client, territory):
    r = await client.post(
        "/v1/practices",
        json=practice_body(territory.id, commune_insee="2A004"),
        headers=territory.coordinator,
    )
    assert r.status_code == 201, r.text


async def test_bad_phone_is_a_422_naming_the_field(client, admin):
    r = await client.post("/v1/territories", json=territory_body(phone="12"), headers=admin)
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["phone"]


async def test_bad_cursor_is_a_422(client, admin):
    r = await client.get("/v1/territories", params={"cursor": "!!!"}, headers=admin)
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["query", "cursor"]


async def test_limit_over_500_is_a_422(client, admin):
    assert_problem(await client.get("/v1/territories?limit=501", headers=admin), 422)


async def test_unexpected_failure_is_a_500_problem_without_trace(settings, sessionmaker):
    import httpx

    from app.main import create_app

    app = create_app(settings)
    app.state.sessionmaker = sessionmaker

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/boom")
    body = assert_problem(r, 500)
    assert "secret internals" not in r.text
    assert body["type"].endswith("/internal-error")


async def test_responses_carry_a_request_id(client):
    r = await client.get("/health/live", headers={"X-Request-ID": "abc123"})
    assert r.headers["x-request-id"] == "abc123"
    r = await client.get("/health/live")
    assert len(r.headers["x-request-id"]) == 32


async def test_unknown_practice_territory_is_a_422(client, admin):
    r = await client.post("/v1/practices", json=practice_body(str(uuid.uuid4())), headers=admin)
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "territory_id"]
