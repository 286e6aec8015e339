"""Issue 23: what the ANS guide's profiles and CapabilityStatement require of Créneau's FHIR
output, beyond the guide's Slot search (tests/test_fhir_sas_guide.py). Every FHIR answer is also
checked against the vendored StructureDefinitions by the `client` fixture."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tests.conftest import make_territory
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
