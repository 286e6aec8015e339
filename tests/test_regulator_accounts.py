"""Regulator accounts pushed by the SAS platform: create, upsert, replay, deactivation."""

import uuid

import pytest
from sqlalchemy import select

from app.activity.models import ActivityEvent

SAS = "urn:oid:1.2.250.1.213.3.6"
RPPS = "urn:oid:1.2.250.1.71.4.2.1"
TYPES = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"


def account(technical=None, national=None, active=True, family="Durand", email="a@sas.fr"):
    identifiers = []
    if technical:
        identifiers.append(
            {
                "type": {"coding": [{"system": TYPES, "code": "INTRN"}]},
                "system": SAS,
                "value": technical,
            }
        )
    if national:
        identifiers.append(
            {
                "type": {"coding": [{"system": TYPES, "code": "IDNPS"}]},
                "system": RPPS,
                "value": national,
            }
        )
    return {
        "resourceType": "Practitioner",
        "meta": {"source": SAS},
        "identifier": identifiers,
        "active": active,
        "name": [{"family": family, "given": ["Marc"]}],
        "telecom": [{"system": "email", "value": email}],
    }


@pytest.fixture
async def platform(world):
    return {**(await world.key("sas_platform")), "Content-Type": "application/fhir+json"}


async def test_platform_creates_an_account(client, platform, admin):
    tech = str(uuid.uuid4())
    r = await client.post("/fhir/Practitioner", json=account(tech), headers=platform)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"http://127.0.0.1:8000/fhir/Practitioner/{r.json()['id']}"
    listed = (await client.get("/v1/regulator-accounts", headers=admin)).json()["items"]
    assert [(a["identifier_system"], a["identifier"], a["email"]) for a in listed] == [
        (SAS, tech, "a@sas.fr")
    ]
    read = await client.get(
        r.headers["location"].replace("http://127.0.0.1:8000", ""), headers=platform
    )
    assert read.json()["identifier"][0]["value"] == tech


async def test_conditional_update_is_an_idempotent_upsert(client, platform, admin):
    tech = str(uuid.uuid4())
    path = f"/fhir/Practitioner?identifier={SAS}|{tech}"
    first = await client.put(path, json=account(tech), headers=platform)
    assert first.status_code == 201
    again = await client.put(path, json=account(tech), headers=platform)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    listed = (await client.get("/v1/regulator-accounts", headers=admin)).json()["items"]
    assert len(listed) == 1


async def test_gaining_a_national_identifier_keeps_the_account(client, platform, admin):
    tech = str(uuid.uuid4())
    created = (await client.post("/fhir/Practitioner", json=account(tech), headers=platform)).json()
    r = await client.put(
        f"/fhir/Practitioner?identifier={SAS}|{tech}",
        json=account(tech, national="810001234567"),
        headers=platform,
    )
    assert r.status_code == 200 and r.json()["id"] == created["id"]
    [listed] = (await client.get("/v1/regulator-accounts", headers=admin)).json()["items"]
    assert (listed["identifier_system"], listed["identifier"]) == (RPPS, "810001234567")


async def test_deactivation_is_listed_and_logged(client, platform, admin, session):
    tech = str(uuid.uuid4())
    created = (await client.post("/fhir/Practitioner", json=account(tech), headers=platform)).json()
    await client.put(
        f"/fhir/Practitioner?identifier={SAS}|{tech}",
        json=account(tech, active=False),
        headers=platform,
    )
    inactive = (await client.get("/v1/regulator-accounts?active=false", headers=admin)).json()[
        "items"
    ]
    assert [a["id"] for a in inactive] == [created["id"]]
    types = (
        await session.scalars(
            select(ActivityEvent.type)
            .where(ActivityEvent.subject_id == uuid.UUID(created["id"]))
            .order_by(ActivityEvent.id)  # written in this order; the heap's order is not kept
        )
    ).all()
    assert types == ["regulator_account.created", "regulator_account.deactivated"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("not json", 400),
        ({"resourceType": "Patient"}, 400),
        ({**account(str(uuid.uuid4())), "active": "maybe"}, 400),
        ({**account(str(uuid.uuid4())), "meta": {"source": "urn:oid:9.9"}}, 422),
        (account(), 422),
        (account("not-a-uuid"), 422),
        ({**account(str(uuid.uuid4())), "name": [{"given": ["X"]}]}, 422),
    ],
)
async def test_bad_bodies(client, platform, body, status):
    kwargs = {"content": body} if isinstance(body, str) else {"json": body}
    r = await client.post("/fhir/Practitioner", headers=platform, **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


async def test_only_the_platform_manages_accounts(client, territory):
    r = await client.post(
        "/fhir/Practitioner", json=account(str(uuid.uuid4())), headers=territory.regulator
    )
    assert r.status_code == 403
    assert (
        await client.get("/v1/regulator-accounts", headers=territory.regulator)
    ).status_code == 403


async def test_bad_identifier_parameter_is_400(client, platform):
    r = await client.put(
        "/fhir/Practitioner?identifier=nobar", json=account(str(uuid.uuid4())), headers=platform
    )
    assert r.status_code == 400


async def test_conditional_update_with_an_unknown_url_identifier_never_touches_another_account(
    client, platform, admin
):
    other = str(uuid.uuid4())
    created = await client.post(
        "/fhir/Practitioner", json=account(other, active=False), headers=platform
    )
    assert created.status_code == 201
    unknown = str(uuid.uuid4())
    r = await client.put(
        f"/fhir/Practitioner?identifier={SAS}|{unknown}", json=account(other), headers=platform
    )
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    [listed] = (await client.get("/v1/regulator-accounts", headers=admin)).json()["items"]
    assert (listed["identifier"], listed["active"]) == (other, False)


async def test_conditional_update_without_a_match_creates_with_the_urls_identifier(
    client, platform, admin
):
    tech = str(uuid.uuid4())
    body = account()  # no identifier in the body: the URL's is the account's
    r = await client.put(f"/fhir/Practitioner?identifier={SAS}|{tech}", json=body, headers=platform)
    assert r.status_code == 201, r.text
    assert [i["value"] for i in r.json()["identifier"]] == [tech]
    listed = (await client.get("/v1/regulator-accounts", headers=admin)).json()["items"]
    assert [(a["identifier_system"], a["identifier"]) for a in listed] == [(SAS, tech)]


async def test_conditional_update_with_one_match_updates_that_account(client, platform):
    tech = str(uuid.uuid4())
    created = (await client.post("/fhir/Practitioner", json=account(tech), headers=platform)).json()
    r = await client.put(
        f"/fhir/Practitioner?identifier={tech}",
        json=account(tech, family="Petit"),
        headers=platform,
    )
    assert r.status_code == 200, r.text
    assert r.json()["id"] == created["id"] and r.json()["name"][0]["family"] == "Petit"


async def test_conditional_update_matching_several_accounts_is_412(client, platform, admin):
    shared = str(uuid.uuid4())
    await client.post("/fhir/Practitioner", json=account(shared), headers=platform)
    await client.post(
        "/fhir/Practitioner",
        json=account(str(uuid.uuid4()), national=shared),
        headers=platform,
    )
    r = await client.put(
        f"/fhir/Practitioner?identifier={shared}",
        json=account(shared, family="Petit"),
        headers=platform,
    )
    assert r.status_code == 412, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    families = {
        a["family_name"]
        for a in (await client.get("/v1/regulator-accounts", headers=admin)).json()["items"]
    }
    assert families == {"Durand"}


async def test_an_account_is_answered_in_the_guides_regulator_profile(client, platform):
    r = await client.post("/fhir/Practitioner", json=account(str(uuid.uuid4())), headers=platform)
    assert r.json()["meta"]["profile"] == [
        "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/FrPractitionerRegul"
    ]  # and the client fixture checks it against that profile
    body = account(str(uuid.uuid4()))
    body["name"] = [{"family": "Sans-Prénom"}]  # the profile needs a given name: no claim
    r = await client.post("/fhir/Practitioner", json=body, headers=platform)
    assert r.status_code == 201 and "profile" not in r.json()["meta"]
