"""Conformance with the ANS SAS guide (SAS-IG.md), CPTS agenda-manager role: the platform's
Slot search replayed against seeded data, every element rule checked, every resource validated
with fhir.resources (R4B models)."""

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhirpathpy import evaluate
from sqlalchemy import event, update

from app.db import DriverStatement
from app.directory.models import Practitioner
from app.sas_bridge import fhir_contexts, fhir_search
from app.scheduling.models import Slot
from tests.conftest import make_territory
from tests.test_slot_search import add_slot

RPPS_OID = "urn:oid:1.2.250.1.71.4.2.1"
SLOT_PROFILE = (
    "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/sas-cpts-slot-aggregator"
)
TYPE_CRENEAU = "https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/TRE-R314-TypeCreneau"
INCLUDES = (
    "_include=Slot:schedule&_include:iterate=Schedule:actor"
    "&_include=Slot:service-type-reference&_include:iterate=HealthcareService:organization"
)


def ts(dt: datetime) -> str:
    return quote(dt.isoformat(timespec="milliseconds"))


@pytest.fixture
async def cpts(client, world, admin):
    t = await make_territory(
        client, world, admin, name="CPTS Guide", finess="150001234", phone="04 71 45 00 00"
    )
    await client.patch(
        f"/v1/practices/{t.practice_id}",
        json={
            "postal_code": "15000",
            "city": "Aurillac",
            "phone": "04 71 48 10 00",
            "finess": "150781234",
        },
        headers=t.coordinator,
    )
    gp = (await client.get(f"/v1/practitioners/{t.practitioner_id}", headers=admin)).json()
    t.rpps = gp["rpps"]
    t.free = [await add_slot(client, t, t.practitioner_id, h) for h in (2, 3, 4)]
    t.tele = await add_slot(
        client, t, t.practitioner_id, 5, modality="teleconsultation", visibility="public"
    )
    t.cpts_only = await add_slot(client, t, t.practitioner_id, 6, visibility="cpts")
    t.platform = await world.key("sas_platform")
    return t


def guide_url(rpps_values: list[str], start: datetime, end: datetime) -> str:
    ids = ",".join(f"{RPPS_OID}|{v}" for v in rpps_values)
    return (
        f"/fhir/Slot?{INCLUDES}&start=ge{ts(start)}&start=le{ts(end)}"
        f"&schedule.actor:Practitioner.identifier={quote(ids, safe='|,:')}&status=free&_count=1000"
    )


def window():
    now = datetime.now(UTC)
    return now, now + timedelta(hours=48)


def by_type(bundle):
    out = {}
    for entry in bundle["entry"]:
        out.setdefault(entry["resource"]["resourceType"], []).append(entry)
    return out


def assert_no_empty(value, path="$"):
    if isinstance(value, dict):
        assert value, f"empty object at {path}"
        for k, v in value.items():
            assert_no_empty(v, f"{path}.{k}")
    elif isinstance(value, list):
        assert value, f"empty array at {path}"
        for i, v in enumerate(value):
            assert_no_empty(v, f"{path}[{i}]")
    else:
        assert value not in (None, ""), f"empty value at {path}"


async def test_the_guides_search_returns_every_match_in_one_conformant_bundle(client, cpts):
    r = await client.get(guide_url([f"8{cpts.rpps}"], *window()), headers=cpts.platform)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    bundle = r.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    assert bundle["meta"]["profile"] == [
        "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/sas-cpts-bundle-aggregator"
    ]
    assert [link["relation"] for link in bundle["link"]] == ["self"]
    assert bundle["link"][0]["url"].startswith("http://127.0.0.1:8000/fhir/Slot?")
    groups = by_type(bundle)
    slots = groups["Slot"]
    # Free SAS and public slots only: the cpts-only slot never reaches the platform.
    assert sorted(e["resource"]["id"] for e in slots) == sorted([*cpts.free, cpts.tele])
    assert bundle["total"] == len(slots) == 4
    assert {e["search"]["mode"] for e in slots} == {"match"}
    for kind in (
        "Schedule",
        "Practitioner",
        "PractitionerRole",
        "HealthcareService",
        "Organization",
    ):
        assert len(groups[kind]) == 1, kind
        assert groups[kind][0]["search"]["mode"] == "include"
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert entry["fullUrl"] == (
            f"http://127.0.0.1:8000/fhir/{resource['resourceType']}/{resource['id']}"
        )
    assert_no_empty(bundle)


async def test_every_resource_validates_with_fhir_resources(client, cpts):
    bundle = (await client.get(guide_url([cpts.rpps], *window()), headers=cpts.platform)).json()
    get_fhir_model_class("Bundle").model_validate(bundle)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)


async def test_slot_elements_follow_the_guide(client, cpts):
    bundle = (await client.get(guide_url([cpts.rpps], *window()), headers=cpts.platform)).json()
    slots = {e["resource"]["id"]: e["resource"] for e in by_type(bundle)["Slot"]}
    cabinet, tele = slots[cpts.free[0]], slots[cpts.tele]
    assert cabinet["meta"]["profile"] == [SLOT_PROFILE]
    assert {(s["system"], s["code"]) for s in cabinet["meta"]["security"]} == {
        (TYPE_CRENEAU, "SNP"),
        (TYPE_CRENEAU, "CPTS"),
    }
    assert {s["code"] for s in tele["meta"]["security"]} == {"PUBLIC", "PRO", "SNP", "CPTS"}
    act = cabinet["serviceType"][0]["coding"][0]
    assert (act["system"], act["code"]) == (
        "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "AMB",
    )
    assert tele["serviceType"][0]["coding"][0]["code"] == "VR"
    cpts_type = cabinet["serviceType"][1]
    assert cpts_type["coding"][0]["code"] == "604"
    assert cpts_type["extension"][0]["url"] == (
        "http://hl7.org/fhir/5.0/StructureDefinition/extension-Slot.serviceType"
    )
    assert cpts_type["extension"][0]["valueReference"]["reference"] == (
        f"HealthcareService/{cpts.id}"
    )
    assert cabinet["specialty"][0]["coding"][0]["code"] == "SM54"
    assert cabinet["appointmentType"]["coding"][0]["code"] == "ROUTINE"
    assert cabinet["status"] == "free"
    assert cabinet["schedule"]["reference"] == f"Schedule/{cpts.practitioner_id}"
    assert cabinet["comment"] == f"http://127.0.0.1:8000/agenda/{cpts.practitioner_id}"
    start = datetime.fromisoformat(cabinet["start"])
    assert start.utcoffset() is not None and ".000" in cabinet["start"]


async def test_included_resources_follow_the_guide_and_references_resolve(client, cpts):
    bundle = (await client.get(guide_url([cpts.rpps], *window()), headers=cpts.platform)).json()
    present = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
    groups = by_type(bundle)
    schedule = groups["Schedule"][0]["resource"]
    practitioner = groups["Practitioner"][0]["resource"]
    role = groups["PractitionerRole"][0]["resource"]
    service = groups["HealthcareService"][0]["resource"]
    organization = groups["Organization"][0]["resource"]
    references = [a["reference"] for a in schedule["actor"]]
    references += [role["practitioner"]["reference"], service["providedBy"]["reference"]]
    references += [e["resource"]["schedule"]["reference"] for e in groups["Slot"]]
    assert set(references) <= present
    ident = practitioner["identifier"][0]
    assert ident["system"] == RPPS_OID and ident["value"] == f"8{cpts.rpps}"
    assert ident["type"]["coding"][0]["code"] == "IDNPS"
    assert practitioner["name"][0]["family"] == "Martin"
    location_ref = role["location"][0]["reference"]
    [contained] = role["contained"]
    assert location_ref == f"#{contained['id']}"
    assert contained["address"] == {
        "line": ["2 place de l'Hôtel de Ville"],
        "city": "Aurillac",
        "state": "15",
        "postalCode": "15000",
    }
    org_id = role["organization"]["identifier"]
    assert (org_id["system"], org_id["value"]) == ("urn:oid:1.2.250.1.71.4.2.2", "1150781234")
    assert role["telecom"][0]["value"] == "+33471481000"
    assert organization["identifier"][0]["value"] == "1150001234"
    assert organization["telecom"][0]["value"] == "+33471450000"
    assert evaluate(organization, "identifier.all(value.matches('^1[0-9]{9}$'))") == [True]


async def test_identifier_without_prefix_and_25_practitioners_in_one_query(
    client, cpts, world, admin
):
    others = ["10000000001", "10000000002"] + [f"1{n:010d}" for n in range(3, 26)]
    values = [cpts.rpps, *others][:25]
    bundle = (await client.get(guide_url(values, *window()), headers=cpts.platform)).json()
    assert bundle["total"] == 4


async def test_the_search_is_a_fixed_number_of_statements(client, cpts, connection, monkeypatch):
    """Two statements (the slots, then their practitioners) whatever the number of slots and
    practitioners: no query per slot or per practitioner."""
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    driver_fetch = DriverStatement.fetch

    async def fetch(self, session, **params):
        statements.append(self.sql)
        return await driver_fetch(self, session, **params)

    monkeypatch.setattr(DriverStatement, "fetch", fetch)

    async def search(rpps: list[str]) -> tuple[dict, int]:
        statements.clear()
        event.listen(connection.sync_engine, "before_cursor_execute", count)
        try:
            r = await client.get(guide_url(rpps, *window()), headers=cpts.platform)
        finally:
            event.remove(connection.sync_engine, "before_cursor_execute", count)
        assert r.status_code == 200, r.text
        return r.json(), sum("FROM slot" in s or "FROM practitioner" in s for s in statements)

    one, one_count = await search([cpts.rpps])
    rpps = [f"{20_000_000_000 + n:011d}" for n in range(3)]
    for value in rpps:
        r = await client.post(
            "/v1/practitioners",
            json={
                "practice_id": cpts.practice_id,
                "rpps": value,
                "family_name": "Autre",
                "given_name": "Médecin",
            },
            headers=cpts.coordinator,
        )
        assert r.status_code == 201, r.text
        for hours in (7, 8, 9):
            await add_slot(client, cpts, r.json()["id"], hours)
    many, many_count = await search([cpts.rpps, *rpps])
    assert (one["total"], many["total"]) == (4, 13)
    assert one_count == many_count == 2


async def test_a_practitioner_deleted_between_the_two_statements_is_left_out(
    client, cpts, monkeypatch
):
    """The second statement no longer finds a practitioner of the first (deleted meanwhile,
    its slots with it): its slots are left out of the Bundle and of its total."""
    r = await client.post(
        "/v1/practitioners",
        json={
            "practice_id": cpts.practice_id,
            "rpps": "20000000009",
            "family_name": "Parti",
            "given_name": "Médecin",
        },
        headers=cpts.coordinator,
    )
    assert r.status_code == 201, r.text
    gone = r.json()["id"]
    for hours in (7, 8):
        await add_slot(client, cpts, gone, hours)
    url = guide_url([cpts.rpps, "20000000009"], *window())
    assert (await client.get(url, headers=cpts.platform)).json()["total"] == 6
    hiding = DriverStatement(
        fhir_contexts.context_statement().where(Practitioner.id != uuid.UUID(gone))
    )
    monkeypatch.setattr(fhir_search, "_context_driver_statement", lambda: hiding)
    bundle = (await client.get(url, headers=cpts.platform)).json()
    slots = by_type(bundle)["Slot"]
    assert bundle["total"] == len(slots) == 4
    assert {e["resource"]["schedule"]["reference"] for e in slots} == {
        f"Schedule/{cpts.practitioner_id}"
    }
    assert [e["resource"]["id"] for e in by_type(bundle)["Practitioner"]] == [
        str(cpts.practitioner_id)
    ]


async def test_unknown_practitioners_give_an_empty_bundle(client, cpts):
    bundle = (
        await client.get(guide_url(["812345678901"], *window()), headers=cpts.platform)
    ).json()
    assert bundle["total"] == 0 and "entry" not in bundle
    assert [link["relation"] for link in bundle["link"]] == ["self"]


async def test_another_identifier_system_matches_nothing(client, cpts):
    start, end = window()
    url = (
        f"/fhir/Slot?start=ge{ts(start)}&start=le{ts(end)}&status=free"
        f"&schedule.actor:Practitioner.identifier=urn:oid:9.9|8{cpts.rpps}"
    )
    assert (await client.get(url, headers=cpts.platform)).json()["total"] == 0


async def test_unencoded_plus_in_offsets_is_understood(client, cpts):
    start = datetime.now(UTC).astimezone().replace(microsecond=0)
    url = (
        f"/fhir/Slot?start=ge{start.isoformat()}&status=free"
        f"&schedule.actor:Practitioner.identifier={cpts.rpps}"
    )
    r = await client.get(url.replace("+", "%20"), headers=cpts.platform)
    assert r.status_code == 200 and r.json()["total"] == 4


async def test_malformed_parameters_are_400_operation_outcomes(client, cpts):
    for query in (
        "start=ge2026-13-45",
        "start=ge2026-11-25T10:00:00",
        "status=maybe",
        "_count=zero",
    ):
        r = await client.get(f"/fhir/Slot?{query}", headers=cpts.platform)
        assert r.status_code == 400, query
        body = r.json()
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["severity"] == "error" and body["issue"][0]["diagnostics"]
        assert r.headers["content-type"].startswith("application/fhir+json")


async def test_missing_key_and_wrong_role_are_operation_outcomes(client, cpts):
    r = await client.get("/fhir/Slot")
    assert r.status_code == 401 and r.json()["resourceType"] == "OperationOutcome"
    r = await client.get("/fhir/Slot", headers=cpts.dashboard)
    assert r.status_code == 403 and r.json()["issue"][0]["code"] == "forbidden"


async def test_status_mapping_from_the_availability_predicate(client, cpts, session):
    booked, held = cpts.free[0], cpts.free[1]
    await session.execute(update(Slot).where(Slot.id == booked).values(status="booked"))
    await session.execute(
        update(Slot)
        .where(Slot.id == held)
        .values(status="held", hold_expires_at=datetime.now(UTC) + timedelta(minutes=5))
    )
    await session.commit()
    bundle = (
        await client.get(
            f"/fhir/Slot?schedule=Schedule/{cpts.practitioner_id}", headers=cpts.coordinator
        )
    ).json()
    status = {e["resource"]["id"]: e["resource"]["status"] for e in bundle["entry"]}
    assert status[booked] == "busy" and status[held] == "busy-tentative"
    assert status[cpts.free[2]] == "free"
    # The coordinator also sees its cpts-only slot; its audience is CPTS alone.
    assert cpts.cpts_only in status
    free = (
        await client.get(
            f"/fhir/Slot?status=free&schedule={cpts.practitioner_id}", headers=cpts.coordinator
        )
    ).json()
    assert booked not in {e["resource"]["id"] for e in free.get("entry", [])}


async def test_ordinary_searches_are_paged(client, cpts):
    r = await client.get(
        f"/fhir/Slot?schedule={cpts.practitioner_id}&_count=2", headers=cpts.coordinator
    )
    bundle = r.json()
    assert bundle["total"] == 5 and len(bundle["entry"]) == 2
    next_url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    second = (
        await client.get(next_url.replace("http://127.0.0.1:8000", ""), headers=cpts.coordinator)
    ).json()
    assert len(second["entry"]) == 2
    assert {e["resource"]["id"] for e in second["entry"]}.isdisjoint(
        {e["resource"]["id"] for e in bundle["entry"]}
    )


async def test_reads_by_id_and_territory_isolation(client, cpts, other_territory):
    for path in (
        f"/fhir/Slot/{cpts.free[0]}",
        f"/fhir/Practitioner/{cpts.practitioner_id}",
        f"/fhir/Schedule/{cpts.practitioner_id}",
        f"/fhir/PractitionerRole/{cpts.practitioner_id}",
        f"/fhir/Location/{cpts.practice_id}",
        f"/fhir/Organization/{cpts.id}",
        f"/fhir/HealthcareService/{cpts.id}",
    ):
        r = await client.get(path, headers=cpts.regulator)
        assert r.status_code == 200, (path, r.text)
        resource = r.json()
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        r = await client.get(path, headers=other_territory.regulator)
        assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    assert (await client.get("/fhir/Slot/not-a-uuid", headers=cpts.regulator)).status_code == 404


async def test_capability_statement(client):
    r = await client.get("/fhir/metadata")
    body = r.json()
    get_fhir_model_class("CapabilityStatement").model_validate(body)
    slot = body["rest"][0]["resource"][0]
    assert slot["type"] == "Slot" and "Schedule:actor" in slot["searchInclude"]
