"""Issue 23: what the ANS guide's profiles and CapabilityStatement require of Créneau's FHIR
output, beyond the guide's Slot search (tests/test_fhir_sas_guide.py). Every FHIR answer is also
checked against the conformance tables written from the guide 1.2.0
(tests/fhir_conformance_tables*.py) by the `client` fixture."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tests.conftest import make_territory, practitioner_body
from tests.fhir_conformance_tables_cpts import CPTS_CAPABILITY, CPTS_CAPABILITY_URL
from tests.fhir_profiles import assert_conforms
from tests.test_fhir_sas_guide import by_type, guide_url
from tests.test_sas_notifications import (
    book_with,
    deliver,
    platform_receiver,  # noqa: F401 - a fixture
)
from tests.test_slot_search import add_slot
from tests.test_web_dashboard import sign_in

READY_PRACTICE = {"postal_code": "15000", "city": "Aurillac"}


def window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now, now + timedelta(hours=48)


async def ready_territory(client, world, admin, **over):
    t = await make_territory(client, world, admin, **{"finess": "150001234", **over})
    r = await client.patch(
        f"/v1/practices/{t.practice_id}", json=READY_PRACTICE, headers=t.coordinator
    )
    assert r.status_code == 200, r.text
    gp = (await client.get(f"/v1/practitioners/{t.practitioner_id}", headers=admin)).json()
    t.rpps = gp["rpps"]
    t.platform = await world.key("sas_platform")
    return t


async def test_a_territory_without_finess_is_not_sent_to_the_platform(client, world, admin):
    t = await make_territory(client, world, admin)  # no FINESS
    await client.patch(f"/v1/practices/{t.practice_id}", json=READY_PRACTICE, headers=t.coordinator)
    rpps = (await client.get(f"/v1/practitioners/{t.practitioner_id}", headers=admin)).json()[
        "rpps"
    ]
    await add_slot(client, t, t.practitioner_id, 3)
    platform = await world.key("sas_platform")
    r = await client.get(guide_url([f"8{rpps}"], *window()), headers=platform)
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 0 and "entry" not in r.json()
    # its own regulators still see its slots
    r = await client.get("/fhir/Slot", headers=t.regulator)
    assert r.json()["total"] == 1


async def test_a_practice_without_postal_code_is_not_sent_to_the_platform(client, world, admin):
    t = await make_territory(client, world, admin, finess="150001234")
    rpps = (await client.get(f"/v1/practitioners/{t.practitioner_id}", headers=admin)).json()[
        "rpps"
    ]
    await add_slot(client, t, t.practitioner_id, 3)
    platform = await world.key("sas_platform")
    r = await client.get(guide_url([f"8{rpps}"], *window()), headers=platform)
    assert r.json()["total"] == 0


async def test_territories_carry_their_readiness_for_the_platform(client, world, admin):
    t = await make_territory(client, world, admin)
    r = await client.get(f"/v1/territories/{t.id}", headers=t.coordinator)
    body = r.json()
    assert body["sas_ready"] is False
    assert body["sas_not_ready_reasons"] == ["finess_missing", "practice_address_incomplete"]
    await client.patch(f"/v1/territories/{t.id}", json={"finess": "150001234"}, headers=admin)
    await client.patch(f"/v1/practices/{t.practice_id}", json=READY_PRACTICE, headers=t.coordinator)
    items = (await client.get("/v1/territories", headers=admin)).json()["items"]
    mine = next(i for i in items if i["id"] == t.id)
    assert mine["sas_ready"] is True and mine["sas_not_ready_reasons"] == []


async def test_the_slot_bundle_location_carries_its_identifier(client, world, admin):
    t = await ready_territory(client, world, admin)
    await add_slot(client, t, t.practitioner_id, 3)
    r = await client.get(guide_url([f"8{t.rpps}"], *window()), headers=t.platform)
    role = by_type(r.json())["PractitionerRole"][0]["resource"]
    (identifier,) = role["contained"][0]["identifier"]
    assert identifier["system"] == "http://127.0.0.1:8000/fhir/Location"
    assert identifier["value"] == t.practice_id
    assert identifier["type"]["coding"][0]["code"] == "INTRN"


async def test_the_directory_page_says_why_the_territory_is_not_sent_to_the_platform(
    client, territory
):
    await sign_in(client, territory.coordinator)
    page = await client.get("/coordination/annuaire")
    assert page.status_code == 200
    assert "Non transmis à la plateforme SAS" in page.text
    assert "pas de FINESS" in page.text


async def test_appointment_notifications_carry_the_territorys_local_offset_and_conform(
    client,
    world,
    admin,
    operator,
    platform_receiver,  # noqa: F811 - the fixture imported above
    sessionmaker,
):
    t = await make_territory(client, world, admin, timezone="Indian/Reunion", department="974")
    booking = await book_with(client, t, operator)
    assert (await deliver(sessionmaker))["delivered"] == 1
    (post,) = platform_receiver.received
    sent = json.loads(post.body)
    assert_conforms(sent)
    for name in ("start", "end", "created"):
        assert sent[name].endswith("+04:00"), sent[name]
    assert datetime.fromisoformat(sent["start"]) == datetime.fromisoformat(booking["start"])


async def _slot_at(client, t, start: datetime) -> str:
    r = await client.post(
        f"/v1/practitioners/{t.practitioner_id}/slots",
        json={
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
            "modality": "cabinet",
            "visibility": "sas",
        },
        headers=t.coordinator,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _ids(bundle) -> list[str]:
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []))


async def test_a_start_date_without_time_is_a_day_of_the_territorys_zone(client, world, admin):
    # Réunion is UTC+4: the day's bounds there are not UTC's.
    t = await make_territory(client, world, admin, timezone="Indian/Reunion", department="974")
    zone = ZoneInfo("Indian/Reunion")
    day = (datetime.now(zone) + timedelta(days=2)).date()
    midnight = datetime.combine(day, time(0), zone)
    before = await _slot_at(client, t, midnight - timedelta(minutes=60))  # the day before
    first = await _slot_at(client, t, midnight + timedelta(minutes=30))  # 20:30 UTC the day before
    last = await _slot_at(client, t, midnight + timedelta(hours=23))
    after = await _slot_at(client, t, midnight + timedelta(hours=24, minutes=30))

    async def search(*bounds: str) -> list[str]:
        query = "&".join(f"start={b}" for b in bounds)
        r = await client.get(f"/fhir/Slot?{query}", headers=t.coordinator)
        assert r.status_code == 200, r.text
        return _ids(r.json())

    assert await search(f"ge{day}") == sorted([first, last, after])
    assert await search(f"eq{day}") == sorted([first, last])
    assert await search(f"{day}") == sorted([first, last])
    assert await search(f"lt{day}") == [before]
    assert await search(f"le{day}") == sorted([before, first, last])
    assert await search(f"gt{day}") == [after]
    assert await search(f"ge{day}", f"le{day}") == sorted([first, last])
    # a month: the slot before is in it unless the day is the month's first
    in_month = [first, last, after] + ([before] if day.day != 1 else [])
    assert await search(f"ge{day.isoformat()[:7]}") == sorted(in_month)


async def test_a_malformed_start_date_is_a_400(client, territory):
    r = await client.get("/fhir/Slot?start=ge2026-13-45", headers=territory.coordinator)
    assert r.status_code == 400
    assert r.json()["resourceType"] == "OperationOutcome"


def _declared(statement) -> dict[str, dict]:
    return {r["type"]: r for r in statement["rest"][0]["resource"]}


async def test_the_capability_statement_serves_what_the_cpts_one_requires(client):
    ours = (await client.get("/fhir/metadata")).json()
    assert CPTS_CAPABILITY_URL in ours["instantiates"]
    declared = _declared(ours)
    for type_, needed in CPTS_CAPABILITY.items():
        mine = declared[type_]
        assert mine["profile"] == needed.profile, type_
        assert needed.interactions <= {i["code"] for i in mine["interaction"]}, type_
        assert needed.search_include <= set(mine.get("searchInclude", [])), type_
        definitions = {p.get("definition") for p in mine.get("searchParam", [])}
        assert needed.search_params <= definitions, (type_, needed.search_params - definitions)


async def test_every_declared_interaction_and_search_parameter_is_served(client, world, admin):
    t = await ready_territory(client, world, admin)
    slot = await add_slot(client, t, t.practitioner_id, 3)
    gp, practice = t.practitioner_id, t.practice_id
    location_identifier = f"http://127.0.0.1:8000/fhir/Location|{practice}"
    # (type, parameter) → (value, the id expected in the answer)
    samples = {
        ("Slot", "start"): ("ge2000-01-01", slot),
        ("Slot", "status"): ("free", slot),
        ("Slot", "schedule"): (f"Schedule/{gp}", slot),
        ("Slot", "schedule.actor:Practitioner.identifier"): (f"8{t.rpps}", slot),
        ("Slot", "_id"): (slot, slot),
        ("Schedule", "_id"): (gp, gp),
        ("Schedule", "actor"): (f"Practitioner/{gp}", gp),
        ("Practitioner", "_id"): (gp, gp),
        ("Practitioner", "identifier"): (f"urn:oid:1.2.250.1.71.4.2.1|8{t.rpps}", gp),
        ("PractitionerRole", "_id"): (gp, gp),
        ("PractitionerRole", "practitioner"): (f"Practitioner/{gp}", gp),
        ("Location", "_id"): (practice, practice),
        ("Location", "identifier"): (location_identifier, practice),
    }
    reads = {"Slot": slot, "Schedule": gp, "Practitioner": gp, "PractitionerRole": gp,
             "Location": practice, "HealthcareService": t.id, "Organization": t.id}  # fmt: skip
    statement = (await client.get("/fhir/metadata")).json()
    for type_, declared in _declared(statement).items():
        if type_ == "Appointment":
            continue  # tests/test_fhir_appointments.py
        codes = {i["code"] for i in declared["interaction"]}
        if "read" in codes:
            r = await client.get(f"/fhir/{type_}/{reads[type_]}", headers=t.coordinator)
            assert r.status_code == 200, (type_, r.text)
        for param in declared.get("searchParam", []):
            name = param["name"]
            if name in ("_count", "_offset"):
                value, expected = ("1", None) if name == "_count" else ("0", None)
            else:
                value, expected = samples[(type_, name)]
            r = await client.get(f"/fhir/{type_}", params={name: value}, headers=t.coordinator)
            assert r.status_code == 200, (type_, name, r.text)
            bundle = r.json()
            assert bundle["type"] == "searchset"
            if expected is not None:
                assert [e["resource"]["id"] for e in bundle["entry"]] == [expected], (type_, name)


async def test_schedule_search_by_actor_finds_the_practitioners_schedule(client, world, admin):
    t = await ready_territory(client, world, admin)
    r = await client.get(
        f"/fhir/Schedule?actor=Practitioner/{t.practitioner_id}", headers=t.platform
    )
    assert r.status_code == 200, r.text
    (entry,) = r.json()["entry"]
    assert entry["resource"]["resourceType"] == "Schedule"
    actors = [a["reference"] for a in entry["resource"]["actor"]]
    assert f"Practitioner/{t.practitioner_id}" in actors
    r = await client.get(f"/fhir/Schedule?actor=Practitioner/{uuid.uuid4()}", headers=t.platform)
    assert r.json()["total"] == 0 and "entry" not in r.json()


async def test_practitioner_search_by_identifier_with_or_without_the_prefix(client, world, admin):
    t = await ready_territory(client, world, admin)
    for value in (f"urn:oid:1.2.250.1.71.4.2.1|8{t.rpps}", f"8{t.rpps}", t.rpps):
        r = await client.get("/fhir/Practitioner", params={"identifier": value}, headers=t.platform)
        assert r.status_code == 200, r.text
        assert [e["resource"]["id"] for e in r.json()["entry"]] == [t.practitioner_id], value
    r = await client.get(
        "/fhir/Practitioner", params={"identifier": f"urn:oid:9.9|8{t.rpps}"}, headers=t.platform
    )
    assert r.json()["total"] == 0


async def test_directory_searches_stay_in_the_callers_territories(
    client, world, admin, other_territory
):
    t = await ready_territory(client, world, admin)
    for type_ in ("Practitioner", "PractitionerRole", "Schedule", "Location"):
        r = await client.get(f"/fhir/{type_}", headers=t.regulator)
        ids = [e["resource"]["id"] for e in r.json()["entry"]]
        assert other_territory.practitioner_id not in ids
        assert other_territory.practice_id not in ids
        assert len(ids) == 1, type_


async def test_directory_searches_are_paged_with_a_next_link(client, world, admin):
    t = await ready_territory(client, world, admin)
    for _ in range(2):
        r = await client.post(
            "/v1/practitioners", json=practitioner_body(t.practice_id), headers=admin
        )
        assert r.status_code == 201, r.text
    first = (await client.get("/fhir/Practitioner?_count=2", headers=t.coordinator)).json()
    assert first["total"] == 3 and len(first["entry"]) == 2
    (following,) = [link["url"] for link in first["link"] if link["relation"] == "next"]
    second = (
        await client.get(following.replace("http://127.0.0.1:8000", ""), headers=t.coordinator)
    ).json()
    assert len(second["entry"]) == 1
    assert not [link for link in second["link"] if link["relation"] == "next"]
    seen = {e["resource"]["id"] for e in first["entry"] + second["entry"]}
    assert len(seen) == 3


async def test_an_unsupported_search_parameter_is_a_400(client, territory):
    r = await client.get("/fhir/Practitioner?name=Martin", headers=territory.coordinator)
    assert r.status_code == 400
    assert r.json()["resourceType"] == "OperationOutcome"


async def _role_organization(client, t) -> dict:
    r = await client.get(f"/fhir/PractitionerRole/{t.practitioner_id}", headers=t.coordinator)
    assert r.status_code == 200, r.text
    return dict(r.json().get("organization") or {})


async def test_a_private_practice_is_identified_by_its_rpps_rang(client, world, admin):
    t = await ready_territory(client, world, admin)
    assert await _role_organization(client, t) == {}  # neither FINESS nor SIRET nor rang
    r = await client.patch(
        f"/v1/practices/{t.practice_id}", json={"cabinet_id": "41000123456701"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["cabinet_id"] == "41000123456701"
    identifier = (await _role_organization(client, t))["identifier"]
    assert identifier["system"] == "urn:oid:1.2.250.1.71.4.2.2"
    assert identifier["value"] == "41000123456701"
    assert identifier["type"]["coding"][0]["code"] == "IDNST"


async def test_siret_comes_before_the_rang(client, world, admin):
    t = await ready_territory(client, world, admin)
    await client.patch(
        f"/v1/practices/{t.practice_id}",
        json={"cabinet_id": "0150012345601", "siret": "12345678901234"},
        headers=admin,
    )
    assert (await _role_organization(client, t))["identifier"]["value"] == "312345678901234"


async def test_a_malformed_cabinet_id_is_a_422_that_changes_nothing(client, world, admin):
    t = await ready_territory(client, world, admin)
    for bad in ("81000123456701", "4123", "4abc"):
        r = await client.patch(
            f"/v1/practices/{t.practice_id}", json={"cabinet_id": bad}, headers=admin
        )
        assert r.status_code == 422, bad
    r = await client.get(f"/v1/practices/{t.practice_id}", headers=admin)
    assert r.json()["cabinet_id"] is None


async def test_the_practice_form_sets_the_rang_and_the_booking_page(client, territory, session):
    from app.directory.models import Practice
    from tests.test_web_directory import NEW_PRACTICE, field_value
    from tests.test_web_pages import csrf_of

    await sign_in(client, territory.coordinator)
    url = f"/coordination/annuaire/cabinets/{territory.practice_id}"
    form = await client.get(url)
    values = {name: field_value(form.text, name) for name in NEW_PRACTICE}
    data = {**values, "csrf": csrf_of(form.text), "cabinet_id": "4123", "booking_url": ""}
    r = await client.post(url, data=data)
    assert r.status_code == 422 and "RPPS rang" in r.text
    page = "https://cabinet.example/rdv"
    r = await client.post(url, data={**data, "cabinet_id": "41000123456701", "booking_url": page})
    assert r.status_code == 303, r.text
    practice = await session.get(Practice, uuid.UUID(territory.practice_id))
    await session.refresh(practice)
    assert (practice.cabinet_id, practice.booking_url) == ("41000123456701", page)


async def test_a_guide_search_of_busy_slots_does_not_claim_the_guides_bundle_profile(
    client, world, admin, session
):
    from sqlalchemy import update

    from app.scheduling.models import Slot

    t = await ready_territory(client, world, admin)
    slot = await add_slot(client, t, t.practitioner_id, 3)
    await session.execute(update(Slot).where(Slot.id == uuid.UUID(slot)).values(status="booked"))
    await session.commit()
    url = guide_url([f"8{t.rpps}"], *window()).replace("status=free", "status=busy")
    r = await client.get(url, headers=t.coordinator)
    assert r.status_code == 200, r.text  # and the client fixture found it conformant
    assert r.json()["total"] == 1 and "meta" not in r.json()
