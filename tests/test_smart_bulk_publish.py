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
