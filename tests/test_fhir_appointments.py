"""Bookings read as FHIR Appointments: the round trip from published slot to Appointment."""

import json
from urllib.parse import quote

from fhir.resources.R4B import get_fhir_model_class

from tests.test_bookings import book
from tests.test_slot_search import add_slot, at

Appointment = get_fhir_model_class("Appointment")
Bundle = get_fhir_model_class("Bundle")
BASE = "http://127.0.0.1:8000"


async def fhir_get(client, path, headers):
    r = await client.get(path, headers=headers)
    assert r.headers["content-type"].startswith("application/fhir+json"), r.text
    return r


async def test_round_trip_published_slot_becomes_busy_and_an_appointment(client, territory):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    slot = (await fhir_get(client, f"/fhir/Slot/{slot_id}", territory.regulator)).json()
    assert slot["status"] == "free"
    free = (await fhir_get(client, "/fhir/Slot?status=free", territory.regulator)).json()
    assert [e["resource"]["id"] for e in free["entry"]] == [slot_id]
    booking = (await book(client, territory, slot_id)).json()

    slot = (await fhir_get(client, f"/fhir/Slot/{slot_id}", territory.regulator)).json()
    assert slot["status"] == "busy"
    manifest = (await client.get("/fhir/$bulk-publish", headers=territory.regulator)).json()
    slot_file = next(o["url"] for o in manifest["output"] if o["type"] == "Slot")
    feed = await client.get(slot_file.removeprefix(BASE), headers=territory.regulator)
    published = [json.loads(line) for line in feed.text.splitlines() if line]
    assert [(s["id"], s["status"]) for s in published] == [(slot_id, "busy")]
    r = await fhir_get(client, f"/fhir/Appointment/{booking['id']}", territory.regulator)
    assert r.status_code == 200
    appointment = r.json()
    Appointment.model_validate(appointment)
    assert appointment["status"] == "booked"
    assert appointment["slot"] == [{"reference": f"Slot/{slot_id}"}]
    assert appointment["start"] == booking["start"]
    assert appointment["serviceType"][0]["coding"][0]["code"] == "AMB"
    actor = appointment["participant"][0]["actor"]
    assert actor["reference"] == f"Practitioner/{territory.practitioner_id}"
    assert actor["identifier"]["system"] == "urn:oid:1.2.250.1.71.4.2.1"
    assert actor["identifier"]["value"].startswith("8")
    assert appointment["identifier"] == [
        {"system": "http://127.0.0.1:8000/fhir/Appointment", "value": booking["id"]}
    ]


async def test_appointment_carries_no_patient_data(client, territory):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    booking = (await book(client, territory, slot_id)).json()
    text = (
        await client.get(f"/fhir/Appointment/{booking['id']}", headers=territory.regulator)
    ).text
    assert "Lemoine" not in text and "+33612345678" not in text and "1948" not in text


async def test_search_is_a_bundle_filtered_by_status_date_and_slot(client, territory):
    first = await add_slot(client, territory, territory.practitioner_id, 3)
    second = await add_slot(client, territory, territory.practitioner_id, 5)
    kept = (await book(client, territory, first)).json()
    gone = (await book(client, territory, second)).json()
    cancel = await client.post(
        f"/v1/bookings/{gone['id']}/cancel", json={"reason": "patient"}, headers=territory.regulator
    )
    assert cancel.status_code == 200, cancel.text

    r = await fhir_get(client, "/fhir/Appointment", territory.coordinator)
    bundle = r.json()
    Bundle.model_validate(bundle)
    assert bundle["type"] == "searchset" and bundle["total"] == 2
    assert [e["resource"]["id"] for e in bundle["entry"]] == [kept["id"], gone["id"]]
    assert all(e["search"]["mode"] == "match" for e in bundle["entry"])

    booked = (
        await client.get("/fhir/Appointment?status=booked", headers=territory.regulator)
    ).json()
    assert [e["resource"]["id"] for e in booked["entry"]] == [kept["id"]]
    cancelled = (
        await client.get("/fhir/Appointment?status=cancelled", headers=territory.regulator)
    ).json()
    assert cancelled["entry"][0]["resource"]["cancelationReason"] == {"text": "patient"}
    later = quote(at(4).isoformat())
    after = (
        await client.get(f"/fhir/Appointment?date=ge{later}", headers=territory.practice)
    ).json()
    assert [e["resource"]["id"] for e in after["entry"]] == [gone["id"]]
    by_slot = (
        await client.get(f"/fhir/Appointment?slot=Slot/{first}", headers=territory.practice)
    ).json()
    assert by_slot["total"] == 1


async def test_search_pages_with_a_next_link(client, territory):
    for hours in (3, 4, 5):
        slot_id = await add_slot(client, territory, territory.practitioner_id, hours)
        assert (await book(client, territory, slot_id)).status_code == 201
    page = (await client.get("/fhir/Appointment?_count=2", headers=territory.coordinator)).json()
    assert page["total"] == 3 and len(page["entry"]) == 2
    following = [link["url"] for link in page["link"] if link["relation"] == "next"]
    assert following and following[0].endswith("_offset=2")
    path = following[0].removeprefix("http://127.0.0.1:8000")
    rest = (await client.get(path, headers=territory.coordinator)).json()
    assert len(rest["entry"]) == 1
    assert not [link for link in rest["link"] if link["relation"] == "next"]


async def test_a_hold_is_a_pending_appointment(client, territory):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    held = (await book(client, territory, slot_id, hold=True)).json()
    r = await client.get(f"/fhir/Appointment/{held['id']}", headers=territory.regulator)
    assert r.json()["status"] == "pending"


async def test_operator_is_carried_as_the_guide_extension(client, territory, operator):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    booking = (await book(client, territory, slot_id, operator=operator)).json()
    appointment = (
        await client.get(f"/fhir/Appointment/{booking['id']}", headers=territory.regulator)
    ).json()
    assert appointment["meta"]["profile"] == [
        "http://sas.fr/fhir/StructureDefinition/FrAppointmentSAS"
    ]
    identifier = appointment["extension"][0]["valueReference"]["identifier"]
    assert (identifier["system"], identifier["value"]) == (operator["system"], operator["value"])


async def test_appointments_are_visible_by_role(client, territory, other_territory):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    booking = (await book(client, territory, slot_id)).json()
    path = f"/fhir/Appointment/{booking['id']}"
    for headers in (territory.regulator, territory.practice, territory.coordinator):
        assert (await client.get(path, headers=headers)).status_code == 200
    for headers in (other_territory.regulator, other_territory.practice):
        r = await client.get(path, headers=headers)
        assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    listed = (await client.get("/fhir/Appointment", headers=other_territory.coordinator)).json()
    assert listed["total"] == 0 and "entry" not in listed
    assert (await client.get(path, headers=territory.dashboard)).status_code == 403


async def test_identifier_search_matches_our_system_only(client, territory):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    booking = (await book(client, territory, slot_id)).json()
    ours = quote(f"http://127.0.0.1:8000/fhir/Appointment|{booking['id']}")
    found = (
        await client.get(f"/fhir/Appointment?identifier={ours}", headers=territory.regulator)
    ).json()
    assert found["total"] == 1
    other = quote(f"urn:other|{booking['id']}")
    none = (
        await client.get(f"/fhir/Appointment?identifier={other}", headers=territory.regulator)
    ).json()
    assert none["total"] == 0


async def test_malformed_parameters_are_400_operation_outcomes(client, territory):
    for query in (
        "date=tomorrow",
        "status=maybe",
        "slot=Patient/1",
        "_count=0",
        "date=2027-01-01T10:00",
    ):
        r = await client.get(f"/fhir/Appointment?{query}", headers=territory.regulator)
        assert r.status_code == 400, query
        assert r.json()["resourceType"] == "OperationOutcome"
    r = await client.get("/fhir/Appointment/not-an-id", headers=territory.regulator)
    assert r.status_code == 404


async def test_capability_statement_lists_appointment(client):
    body = (await client.get("/fhir/metadata")).json()
    types = {r["type"]: r for r in body["rest"][0]["resource"]}
    assert {p["name"] for p in types["Appointment"]["searchParam"]} >= {"date", "status"}
