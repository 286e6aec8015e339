"""A NUL character (U+0000), which PostgreSQL cannot store in text, is refused at the edge
with a 422 wherever a client can put it: a JSON string, a query parameter, a form field, a
FHIR search parameter or the path. Nothing is written, and the answer is never a 500."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from app.directory.models import Territory
from app.scheduling.booking_models import Booking
from tests.conftest import assert_problem, territory_body
from tests.test_bookings import PATIENT, book, idem
from tests.test_slot_search import add_slot
from tests.test_web_dashboard import sign_in


async def _count(session, model):
    return await session.scalar(select(func.count()).select_from(model))


async def test_nul_in_a_json_string_is_a_422_naming_the_field(client, territory, session):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    before = await _count(session, Booking)
    r = await book(client, territory, slot_id, patient={**PATIENT, "given_name": "Jeanne\u0000"})
    body = assert_problem(r, 422, "/validation-error")
    assert body["errors"] == [
        {"loc": ["patient", "given_name"], "msg": "must not contain NUL characters"}
    ]
    assert "Jeanne" not in r.text  # the value is not echoed back
    assert await _count(session, Booking) == before


async def test_nul_in_a_json_object_key_is_a_422(client, admin, session):
    before = await _count(session, Territory)
    r = await client.post(
        "/v1/territories", json={**territory_body(), "na\u0000me": "x"}, headers=admin
    )
    assert_problem(r, 422, "/validation-error")
    assert await _count(session, Territory) == before


async def test_nul_in_a_json_body_sent_without_content_type_is_a_422(client, admin, session):
    before = await _count(session, Territory)
    r = await client.post(
        "/v1/territories",
        content=b'{"name": "CPTS\\u0000", "timezone": "Europe/Paris", "department": "15"}',
        headers=admin,
    )
    assert_problem(r, 422, "/validation-error")
    assert await _count(session, Territory) == before


async def test_an_escaped_backslash_before_u0000_is_text_not_a_nul(client, admin):
    r = await client.post(
        "/v1/territories", json=territory_body(name="CPTS \\u0000 du Cantal"), headers=admin
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "CPTS \\u0000 du Cantal"


async def test_a_lone_surrogate_in_a_json_string_is_a_422(client, admin, session):
    before = await _count(session, Territory)
    r = await client.post(
        "/v1/territories",
        content=b'{"name": "CPTS \\ud800", "timezone": "Europe/Paris", "department": "15"}',
        headers={**admin, "content-type": "application/json"},
    )
    body = assert_problem(r, 422, "/validation-error")
    assert body["errors"][0]["loc"] == ["name"]
    assert await _count(session, Territory) == before


async def test_a_surrogate_pair_in_a_json_string_is_an_ordinary_character(client, admin):
    r = await client.post(
        "/v1/territories",
        content=b'{"name": "CPTS \\ud83d\\ude91", "timezone": "Europe/Paris", "department": "15"}',
        headers={**admin, "content-type": "application/json"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "CPTS \U0001f691"


async def test_nul_in_a_query_parameter_is_a_422_naming_it(client, territory):
    r = await client.get(
        "/v1/practices", params={"name": "Maison\x00"}, headers=territory.coordinator
    )
    body = assert_problem(r, 422, "/validation-error")
    assert body["errors"] == [{"loc": ["query", "name"], "msg": "must not contain NUL characters"}]


async def test_nul_in_the_path_is_a_422(client, territory):
    r = await client.get("/v1/practices/%00", headers=territory.coordinator)
    assert_problem(r, 422, "/validation-error")


async def test_nul_in_a_fhir_search_parameter_is_a_422_operation_outcome(client, territory):
    r = await client.get(
        "/fhir/Slot",
        params={"schedule.actor:Practitioner.identifier": "urn:oid:1.2.250.1.71.4.2.1|8\x00"},
        headers=territory.regulator,
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/fhir+json")
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert any("NUL" in issue["diagnostics"] for issue in outcome["issue"])


async def test_nul_in_a_fhir_json_body_is_a_422_operation_outcome(client, world):
    platform = await world.key("sas_platform")
    r = await client.post(
        "/fhir/Practitioner",
        json={"resourceType": "Practitioner", "name": [{"family": "Dur\u0000and"}]},
        headers=platform,
    )
    assert r.status_code == 422
    assert r.json()["resourceType"] == "OperationOutcome"


async def test_nul_in_a_form_field_is_a_422_french_page_and_writes_nothing(
    client, territory, session
):
    await sign_in(client, territory.coordinator, "/coordination/annuaire")
    page = await client.get("/coordination/annuaire/cabinets/nouveau")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = await client.post(
        "/coordination/annuaire/cabinets",
        data={"csrf": csrf, "name": "Maison\x00de santé", "address": "1 rue", "lat": "45"},
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("text/html")
    assert "caractère nul" in r.text
    assert "Traceback" not in r.text


async def test_nul_in_a_page_query_parameter_is_a_422_french_page(client, territory):
    await sign_in(client, territory.practice, "/cabinet")
    r = await client.get("/cabinet", params={"semaine": "2027-01-04\x00"})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("text/html")
    assert "caractère nul" in r.text


async def test_a_percent_sign_that_is_not_a_nul_passes(client, territory):
    r = await client.get("/v1/practices", params={"name": "%00"}, headers=territory.coordinator)
    assert r.status_code == 200, r.text


async def test_a_refused_nul_records_no_idempotency_key(client, territory):
    """The refusal happens before the application: the key is still free for a good body."""
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    key = idem()
    bad = await book(client, territory, slot_id, key=key, reason="\u0000")
    assert bad.status_code == 422
    r = await book(client, territory, slot_id, key=key)
    assert r.status_code == 201, r.text
