"""SMART Scheduling Links: the $bulk-publish manifest and its NDJSON files."""

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import update

from app.scheduling.models import Slot
from tests.test_slot_search import add_slot


def ndjson(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line]


async def test_manifest_lists_the_three_files(client, territory):
    r = await client.get("/fhir/$bulk-publish", headers=territory.regulator)
    assert r.status_code == 200, r.text
    body = r.json()
    assert datetime.fromisoformat(body["transactionTime"]).tzinfo is not None
    assert [o["type"] for o in body["output"]] == ["Location", "Schedule", "Slot"]
    assert body["output"][2]["url"] == "http://127.0.0.1:8000/fhir/$bulk-publish/Slot.ndjson"
    assert body["error"] == []


async def test_files_are_valid_ndjson_fhir_and_link_together(client, territory):
    free = await add_slot(client, territory, territory.practitioner_id, 3)
    await add_slot(client, territory, territory.practitioner_id, 4, visibility="cpts")
    files = {}
    for kind in ("Location", "Schedule", "Slot"):
        r = await client.get(f"/fhir/$bulk-publish/{kind}.ndjson", headers=territory.regulator)
        assert r.status_code == 200 and r.headers["content-type"].startswith(
            "application/fhir+ndjson"
        )
        files[kind] = ndjson(r.text)
        for resource in files[kind]:
            assert resource["resourceType"] == kind
            get_fhir_model_class(kind).model_validate(resource)
    assert [s["id"] for s in files["Slot"]] == [free]  # the cpts-only slot stays inside
    slot = files["Slot"][0]
    assert slot["status"] == "free"
    assert slot["extension"][0]["valueUrl"].endswith(f"/agenda/{territory.practitioner_id}")
    schedule_ids = {s["id"] for s in files["Schedule"]}
    assert slot["schedule"]["reference"].split("/")[1] in schedule_ids
    locations = {f"Location/{loc['id']}" for loc in files["Location"]}
    assert {a["reference"] for s in files["Schedule"] for a in s["actor"]} & locations


async def test_since_returns_only_changed_slots(client, territory, session):
    old = await add_slot(client, territory, territory.practitioner_id, 3)
    new = await add_slot(client, territory, territory.practitioner_id, 4)
    past = datetime.now(UTC) - timedelta(days=2)
    await session.execute(update(Slot).where(Slot.id == old).values(updated_at=past))
    await session.commit()
    since = quote((datetime.now(UTC) - timedelta(days=1)).isoformat())
    r = await client.get(
        f"/fhir/$bulk-publish/Slot.ndjson?_since={since}", headers=territory.regulator
    )
    assert [s["id"] for s in ndjson(r.text)] == [new]


async def test_booked_slot_is_busy_in_the_feed(client, territory, session):
    sid = await add_slot(client, territory, territory.practitioner_id, 3)
    await session.execute(update(Slot).where(Slot.id == sid).values(status="booked"))
    await session.commit()
    r = await client.get("/fhir/$bulk-publish/Slot.ndjson", headers=territory.coordinator)
    assert [s["status"] for s in ndjson(r.text)] == ["busy"]


async def test_unknown_file_and_wrong_role(client, territory):
    r = await client.get("/fhir/$bulk-publish/Patient.ndjson", headers=territory.regulator)
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    r = await client.get("/fhir/$bulk-publish", headers=territory.dashboard)
    assert r.status_code == 403


async def test_public_slots_are_published_without_a_key(client, territory, other_territory):
    public = await add_slot(client, territory, territory.practitioner_id, 3, visibility="public")
    await add_slot(client, territory, territory.practitioner_id, 4)  # sas: keyed readers only
    await add_slot(client, other_territory, other_territory.practitioner_id, 5)  # no public slot
    r = await client.get("/fhir/$bulk-publish")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "public, max-age=60"
    files = {}
    for output in r.json()["output"]:
        got = await client.get(output["url"].replace("http://127.0.0.1:8000", ""))
        assert got.status_code == 200, got.text
        assert got.headers["cache-control"] == "public, max-age=60"
        files[output["type"]] = ndjson(got.text)
    assert [s["id"] for s in files["Slot"]] == [public]
    assert [s["id"] for s in files["Schedule"]] == [territory.practitioner_id]
    assert [loc["id"] for loc in files["Location"]] == [territory.practice_id]


async def test_a_keyed_view_is_private_to_its_reader(client, territory):
    r = await client.get("/fhir/$bulk-publish", headers=territory.regulator)
    assert r.headers["cache-control"] == "private, max-age=60"


async def test_manifest_outputs_carry_the_departements_they_cover(client, territory):
    await add_slot(client, territory, territory.practitioner_id, 3, visibility="public")
    body = (await client.get("/fhir/$bulk-publish")).json()
    assert [o["extension"]["state"] for o in body["output"]] == [["15"]] * 3


async def test_locations_carry_identifier_and_state_and_schedules_one_location_actor(
    client, territory
):
    await add_slot(client, territory, territory.practitioner_id, 3, visibility="public")
    (location,) = ndjson((await client.get("/fhir/$bulk-publish/Location.ndjson")).text)
    assert location["address"]["state"] == "15"
    (identifier,) = location["identifier"]
    assert identifier["system"] and identifier["value"] == territory.practice_id
    (schedule,) = ndjson((await client.get("/fhir/$bulk-publish/Schedule.ndjson")).text)
    assert schedule["actor"] == [{"reference": f"Location/{territory.practice_id}"}]
    assert schedule["serviceType"][0]["coding"][0]["code"] == "124"


async def test_a_public_slot_links_to_the_practices_own_booking_page_or_to_nothing(
    client, territory, admin
):
    await add_slot(client, territory, territory.practitioner_id, 3, visibility="public")
    (slot,) = ndjson((await client.get("/fhir/$bulk-publish/Slot.ndjson")).text)
    assert "extension" not in slot
    page = "https://cabinet-aurillac.example/rendez-vous"
    r = await client.patch(
        f"/v1/practices/{territory.practice_id}", json={"booking_url": page}, headers=admin
    )
    assert r.status_code == 200, r.text
    (slot,) = ndjson((await client.get("/fhir/$bulk-publish/Slot.ndjson")).text)
    assert slot["extension"] == [
        {
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-deep-link",
            "valueUrl": page,
        }
    ]


async def test_a_malformed_booking_url_is_a_422(client, territory, admin):
    r = await client.patch(
        f"/v1/practices/{territory.practice_id}",
        json={"booking_url": "javascript:alert(1)"},
        headers=admin,
    )
    assert r.status_code == 422
