"""Smaller exposures: the MT duplicate's id, regulator accounts' e-mails, /metrics."""

import ipaddress
import uuid

import httpx
from pydantic import SecretStr

from app.main import create_app
from tests.test_bookings import book, idem
from tests.test_mt_requests import patient
from tests.test_regulator_accounts import SAS, account
from tests.test_slot_search import add_slot

TOKEN = SecretStr("s3cret-metrics")


def _ins() -> str:
    nir = "2850375123456"
    return nir + f"{97 - int(nir) % 97:02d}"


async def _register(client, key, p):
    body = {"patient": p, "ald": False, "precarity": False, "source": "hotline"}
    return await client.post("/v1/mt-requests", json=body, headers={**key, **idem()})


async def test_mt_duplicate_hides_the_first_requests_id_from_a_caller_who_cannot_read_it(
    client, territory, world
):
    p = patient(ins=_ins())
    first = await _register(client, territory.coordinator, p)
    assert first.status_code == 201, first.text
    r = await _register(client, territory.regulator, p)
    assert r.status_code == 409
    assert r.json().get("existing_id") is None


async def test_mt_duplicate_shows_the_first_requests_id_to_a_caller_who_can_read_it(
    client, territory
):
    p = patient(ins=_ins())
    first = (await _register(client, territory.regulator, p)).json()["id"]
    r = await _register(client, territory.coordinator, p)
    assert r.status_code == 409 and r.json()["existing_id"] == first
    again = await _register(client, territory.regulator, p)
    assert again.json()["existing_id"] == first


async def test_coordinator_reads_only_accounts_that_booked_in_its_territory(
    client, territory, other_territory, world, admin
):
    platform = await world.key("sas_platform")
    ours, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    for tech in (ours, theirs):
        r = await client.post("/fhir/Practitioner", json=account(tech), headers=platform)
        assert r.status_code == 201, r.text
    slot = await add_slot(client, territory, territory.practitioner_id, 3)
    r = await book(client, territory, slot, operator={"system": SAS, "value": ours})
    assert r.status_code == 201, r.text
    slot_b = await add_slot(client, other_territory, other_territory.practitioner_id, 3)
    r = await book(client, other_territory, slot_b, operator={"system": SAS, "value": theirs})
    assert r.status_code == 201, r.text

    listed = (await client.get("/v1/regulator-accounts", headers=territory.coordinator)).json()
    assert [a["identifier"] for a in listed["items"]] == [ours]
    everyone = (await client.get("/v1/regulator-accounts", headers=admin)).json()["items"]
    assert {a["identifier"] for a in everyone} == {ours, theirs}


async def _metrics(settings, sessionmaker, headers=None, **over):
    app = create_app(settings.model_copy(update=over))
    app.state.sessionmaker = sessionmaker
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return await http.get("/metrics", headers=headers or {})


async def test_metrics_are_refused_outside_the_allowed_addresses(settings, sessionmaker):
    r = await _metrics(
        settings, sessionmaker, metrics_allowed_ips=[ipaddress.ip_network("10.0.0.0/8")]
    )
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_metrics_are_served_to_an_allowed_address(settings, sessionmaker):
    net = ipaddress.ip_network("198.51.100.0/24")
    assert (await _metrics(settings, sessionmaker, metrics_allowed_ips=[net])).status_code == 200


async def test_metrics_need_the_token_when_one_is_set(settings, sessionmaker):
    r = await _metrics(settings, sessionmaker, metrics_token=TOKEN)
    assert r.status_code == 403
    wrong = {"Authorization": "Bearer nope"}
    assert (await _metrics(settings, sessionmaker, wrong, metrics_token=TOKEN)).status_code == 403
    right = {"Authorization": "Bearer s3cret-metrics"}
    assert (await _metrics(settings, sessionmaker, right, metrics_token=TOKEN)).status_code == 200
