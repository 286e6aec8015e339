"""Integers and cursors beyond what their field can mean are a 422 (an OperationOutcome under
/fhir), never a 500 from a number PostgreSQL or Python's dates cannot hold. Cursors are opaque,
but a client can forge one: every cursor decoder checks each of its values."""

from __future__ import annotations

import pytest

from app.config import get_settings
from app.pagination import encode_cursor
from tests.conftest import assert_problem
from tests.test_web_dashboard import sign_in
from tests.test_webhooks import register

HUGE = str(10**30)
ID = "0b0e7a52-0000-4000-8000-000000000000"
AT = "2027-01-04T10:00:00+01:00"
FAR = "9999-12-31T23:00:00-05:00"


def _invalid_cursor(response):
    body = assert_problem(response, 422, "/validation-error")
    assert body["errors"] == [{"loc": ["query", "cursor"], "msg": "invalid cursor"}]


@pytest.mark.parametrize(
    "values",
    [
        [HUGE, AT, ID],  # the priority of issue 20
        ["-1", AT, ID],
        ["4", AT, ID],
        ["²", AT, ID],  # a Unicode digit Python's isdigit() accepts and int() refuses
        ["1", FAR, ID],
        ["1", "2027-01-04T10:00:00", ID],  # no offset: not a cursor this service wrote
        ["1", AT, "not-a-uuid"],
    ],
)
async def test_a_forged_mt_queue_cursor_is_a_422(client, territory, values):
    r = await client.get(
        "/v1/mt-requests", params={"cursor": encode_cursor(values)}, headers=territory.coordinator
    )
    _invalid_cursor(r)


@pytest.mark.parametrize(
    "values",
    [
        [FAR, "0.0", ID],
        ["0001-01-01T00:05:00+01:00", "0.0", ID],
        [AT, "inf", ID],
        [AT, "nan", ID],
        [AT, "-1.0", ID],
        [AT, "1e400", ID],
        [AT, "None", ID],
    ],
)
async def test_a_forged_slot_search_cursor_is_a_422(client, territory, values):
    r = await client.get(
        "/v1/slots", params={"cursor": encode_cursor(values)}, headers=territory.regulator
    )
    _invalid_cursor(r)


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/v1/bookings", "coordinator"),
        ("/v1/practices", "coordinator"),
        ("/v1/practitioners", "coordinator"),
        ("/v1/keys", "coordinator"),
        ("/v1/regulator-accounts", "coordinator"),
    ],
)
async def test_a_time_and_id_cursor_beyond_2100_is_a_422(client, territory, path, role):
    r = await client.get(
        path, params={"cursor": encode_cursor([FAR, ID])}, headers=getattr(territory, role)
    )
    _invalid_cursor(r)


@pytest.mark.parametrize("path", ["/v1/activity", "/v1/audit"])
@pytest.mark.parametrize("value", [HUGE, "²", "-5", str(2**63)])
async def test_a_log_cursor_beyond_a_bigint_or_not_ascii_digits_is_a_422(
    client, territory, path, value
):
    r = await client.get(
        path, params={"cursor": encode_cursor([value])}, headers=territory.coordinator
    )
    _invalid_cursor(r)


async def test_a_log_cursor_at_the_largest_bigint_is_served(client, territory):
    r = await client.get(
        "/v1/activity", params={"cursor": encode_cursor([2**63 - 1])}, headers=territory.coordinator
    )
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []


@pytest.mark.parametrize("limit", [HUGE, "0", "501", "-1"])
async def test_a_limit_outside_1_500_is_a_422(client, territory, limit):
    r = await client.get("/v1/practices", params={"limit": limit}, headers=territory.coordinator)
    body = assert_problem(r, 422)
    assert body["errors"][0]["loc"] == ["query", "limit"]


@pytest.mark.parametrize("path", ["/fhir/Appointment", "/fhir/Slot"])
@pytest.mark.parametrize(
    ("name", "value"), [("_offset", str(10**20)), ("_count", str(10**20)), ("_offset", HUGE)]
)
async def test_a_fhir_paging_number_beyond_a_fhir_integer_is_a_422_operation_outcome(
    client, territory, path, name, value
):
    r = await client.get(path, params={name: value}, headers=territory.regulator)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert any(name in issue["diagnostics"] for issue in outcome["issue"])


async def test_a_fhir_offset_at_the_largest_fhir_integer_is_an_empty_page(client, territory):
    r = await client.get(
        "/fhir/Appointment", params={"_offset": str(2**31 - 1)}, headers=territory.regulator
    )
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 0


async def test_a_forged_search_cursor_on_the_regulator_page_shows_no_slot_rather_than_500(
    client, territory
):
    await sign_in(client, territory.regulator, "/regulation")
    r = await client.get(
        "/regulation",
        params={"commune": "15014", "rayon": "30", "suite": encode_cursor([FAR, "0.0", ID])},
    )
    assert r.status_code == 200, r.text


async def test_a_notification_id_beyond_a_bigint_is_a_422(client, territory):
    r = await client.post(f"/v1/sas-notifications/{HUGE}/retry", headers=territory.coordinator)
    body = assert_problem(r, 422)
    assert body["errors"][0]["loc"] == ["path", "notification_id"]


async def test_a_webhook_delivery_id_beyond_a_bigint_is_a_422(client, territory, monkeypatch):
    monkeypatch.setattr(get_settings(), "webhook_allow_insecure_urls", True)
    endpoint = await register(client, territory.practice, "http://127.0.0.1:9/hook")
    r = await client.post(
        f"/v1/webhooks/{endpoint['id']}/deliveries/{HUGE}/retry",
        headers=territory.practice,
    )
    body = assert_problem(r, 422)
    assert body["errors"][0]["loc"] == ["path", "delivery_id"]
