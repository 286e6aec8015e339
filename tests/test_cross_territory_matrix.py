"""Every route of /openapi.json, called by every key of territory B (and by a regulator key that
B's coordinator minted for a SAS also linked to A), with the ids of territory A's resources in
its path and body: never a success on A's resources, never A's patient or records in an answer,
and A's records unchanged afterwards."""

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest

from tests.conftest import Territory
from tests.test_bookings import PATIENT, book, idem
from tests.test_mt_requests import patient
from tests.test_slot_search import add_slot, at


@dataclass
class A:
    t: Territory
    slot: str  # booked
    free_slot: str
    booking: str
    mt: str
    mt_family_name: str
    rule: str
    unavailability: str
    key: str
    ids: dict[str, str] = field(default_factory=dict)


async def _territory_a(client, admin, territory, other_territory) -> A:
    t = territory
    slot = await add_slot(client, t, t.practitioner_id, 3)
    free_slot = await add_slot(client, t, t.practitioner_id, 5)
    booking = (await book(client, t, slot)).json()["id"]
    mt_patient = patient()
    r = await client.post(
        "/v1/mt-requests",
        json={"patient": mt_patient, "ald": True, "precarity": False, "source": "hotline"},
        headers={**t.coordinator, **idem()},
    )
    assert r.status_code == 201, r.text
    mt = r.json()["id"]
    later = (date.today() + timedelta(days=60)).isoformat()
    r = await client.post(
        f"/v1/practitioners/{t.practitioner_id}/availability-rules",
        json={"rrule": "FREQ=WEEKLY;BYDAY=MO", "start_time": "08:00", "end_time": "09:00",
              "slot_minutes": 30, "modality": "cabinet", "visibility": "sas",
              "valid_from": later},
        headers=t.coordinator,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    rule = r.json()["id"]
    start = at(24 * 20)
    r = await client.post(
        f"/v1/practitioners/{t.practitioner_id}/unavailabilities",
        json={"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()},
        headers=t.coordinator,
    )
    assert r.status_code == 201, r.text
    unavailability = r.json()["id"]
    r = await client.post(
        "/v1/keys", json={"role": "dashboard", "name": "tableau A"}, headers=t.coordinator
    )
    key = r.json()["id"]
    a = A(t, slot, free_slot, booking, mt, mt_patient["family_name"], rule, unavailability, key)
    a.ids = {
        "territory_id": t.id,
        "practice_id": t.practice_id,
        "practitioner_id": t.practitioner_id,
        "regulator_id": t.regulator_id,
        "booking_id": booking,
        "appointment_id": booking,
        "request_id": mt,
        "slot_id": free_slot,
        "rule_id": rule,
        "unavailability_id": unavailability,
        "key_id": key,
    }
    return a


# Bodies that a client of territory A would send, by (method, path template).
def _bodies(a: A) -> dict[tuple[str, str], dict[str, Any]]:
    t = a.t
    start = at(2).isoformat()
    return {
        ("POST", "/v1/bookings"): {"slot_id": a.free_slot, "patient": PATIENT},
        ("POST", "/v1/bookings/overbook"): {
            "practitioner_id": t.practitioner_id, "start": start, "patient": PATIENT,
        },
        ("POST", "/v1/bookings/{booking_id}/confirm"): {"patient": PATIENT},
        ("POST", "/v1/bookings/{booking_id}/cancel"): {"reason": "x"},
        ("POST", "/v1/bookings/{booking_id}/outcome"): {"outcome": "honored"},
        ("POST", "/v1/mt-requests"): {
            "patient": patient(), "ald": False, "precarity": False, "source": "hotline",
            "territory_id": t.id,
        },
        ("POST", "/v1/mt-requests/{request_id}/proposals"): {"practitioner_id": t.practitioner_id},
        ("POST", "/v1/mt-requests/{request_id}/decline"): {"reason": "x"},
        ("POST", "/v1/mt-requests/{request_id}/withdraw"): {"reason": "x"},
        ("POST", "/v1/practitioners/{practitioner_id}/slots"): {
            "start": at(30).isoformat(), "end": at(31).isoformat(),
            "modality": "cabinet", "visibility": "sas",
        },
        ("POST", "/v1/practitioners/{practitioner_id}/unavailabilities"): {
            "start": at(40).isoformat(), "end": at(41).isoformat(),
        },
        ("POST", "/v1/practitioners/{practitioner_id}/availability-rules"): {
            "rrule": "FREQ=WEEKLY;BYDAY=TU", "start_time": "08:00", "end_time": "09:00",
            "slot_minutes": 30, "modality": "cabinet", "visibility": "sas",
            "valid_from": (date.today() + timedelta(days=90)).isoformat(),
        },
        ("PATCH", "/v1/practitioners/{practitioner_id}/availability-rules/{rule_id}"): {
            "end_time": "10:00"
        },
        ("PUT", "/v1/practitioners/{practitioner_id}/mt-capacity"): {"mt_capacity": 9},
        ("PUT", "/v1/practitioners/{practitioner_id}/agenda-feed"): {
            "url": "https://agenda.example.org/a.ics", "format": "ical",
        },
        ("PATCH", "/v1/practitioners/{practitioner_id}"): {"family_name": "Changé"},
        ("PATCH", "/v1/practices/{practice_id}"): {"name": "Changé"},
        ("PATCH", "/v1/territories/{territory_id}"): {"name": "Changé"},
        ("POST", "/v1/practices"): {
            "territory_id": t.id, "name": "x", "address": "x", "commune_insee": "15014",
            "lat": 44.9, "lon": 2.4,
        },
        ("POST", "/v1/practitioners"): {
            "practice_id": t.practice_id, "rpps": "19999999999", "family_name": "X",
            "given_name": "Y",
        },
        ("POST", "/v1/keys"): {"role": "practice", "name": "x", "practice_id": t.practice_id},
        ("POST", "/v1/territories/{territory_id}/regulators"): {"regulator_id": t.regulator_id},
        ("PUT", "/v1/indicators/targets"): {"year": 2027, "targets": {}},
    }  # fmt: skip


_QUERIES = {
    "/v1/indicators": {"territory_id": "territory_id"},
    "/v1/practices": {"territory_id": "territory_id"},
    "/v1/practitioners": {"practice_id": "practice_id"},
    "/fhir/Appointment": {"slot": "slot_id"},
    "/fhir/Slot": {"schedule": "practitioner_id"},
}


def _fill(path: str, ids: dict[str, str]) -> tuple[str, bool]:
    """The path with A's ids for its parameters; whether any was one of A's."""
    used = False

    def one(match: re.Match[str]) -> str:
        nonlocal used
        name = match.group(1)
        if name == "type_":
            return "Slot"
        if name in ids:
            used = True
            return ids[name]
        if name == "resource_id":
            used = True
            return ids["practitioner_id"]
        return str(uuid.uuid4())

    return re.sub(r"\{(\w+)\}", one, path), used


@pytest.fixture
async def attackers(client, admin, territory, other_territory, world):
    # B's SAS is also linked to A; B's coordinator mints a key of that SAS: it acts in B only.
    r = await client.post(
        f"/v1/territories/{territory.id}/regulators",
        json={"regulator_id": other_territory.regulator_id},
        headers=admin,
    )
    assert r.status_code == 204, r.text
    r = await client.post(
        "/v1/keys",
        json={
            "role": "regulator",
            "name": "SAS de B",
            "regulator_id": other_territory.regulator_id,
        },
        headers=other_territory.coordinator,
    )
    assert r.status_code == 201, r.text
    b = other_territory
    return {
        "coordinator B": b.coordinator,
        "practice B": b.practice,
        "dashboard B": b.dashboard,
        "regulator of a shared SAS, minted by B": {"Authorization": f"Bearer {r.json()['key']}"},
    }


async def test_no_key_of_territory_b_reaches_territory_as_records(
    client, admin, territory, other_territory, attackers, session
):
    a = await _territory_a(client, admin, territory, other_territory)
    spec = (await client.get("/openapi.json")).json()
    bodies = _bodies(a)
    secrets = [a.booking, a.mt, a.slot, a.free_slot, "Lemoine", a.mt_family_name, "612345678"]
    failures: list[str] = []
    calls = 0
    for template, operations in spec["paths"].items():
        if not template.startswith(("/v1/", "/fhir/")) or template == "/fhir/metadata":
            continue
        for method in operations:
            method = method.upper()
            path, on_a = _fill(template, a.ids)
            query = {k: a.ids[v] for k, v in _QUERIES.get(template, {}).items()}
            body = bodies.get((method, template))
            for who, key in attackers.items():
                headers = {**key, **idem()}
                if template.startswith("/fhir/") and method in ("POST", "PUT"):
                    headers["Content-Type"] = "application/fhir+json"
                r = await client.request(
                    method, path, params=query, json=body if body is not None else None,
                    headers=headers,
                )  # fmt: skip
                calls += 1
                ok = 200 <= r.status_code < 300
                # A write on a path of A's succeeding, or a write elsewhere landing in A.
                if ok and (on_a or method != "GET") and (on_a or not _own_write(r, a)):
                    failures.append(f"{who}: {method} {path} -> {r.status_code}")
                    continue
                leaked = [s for s in secrets if s in _content(r)]
                if ok and leaked:
                    failures.append(f"{who}: {method} {path} shows {leaked}")
                assert r.status_code < 500, f"{who}: {method} {path} -> {r.text}"
    assert calls > 200
    assert failures == [], "\n".join(failures)

    booking = (await client.get(f"/v1/bookings/{a.booking}", headers=territory.coordinator)).json()
    assert booking["status"] == "booked" and booking["patient"]["family_name"] == "Lemoine"
    mt = (await client.get(f"/v1/mt-requests/{a.mt}", headers=territory.coordinator)).json()
    assert mt["status"] == "waiting"
    gp = await client.get(f"/v1/practitioners/{territory.practitioner_id}", headers=admin)
    assert gp.json()["family_name"] == "Martin"
    keys = (await client.get("/v1/keys", headers=territory.coordinator)).json()["items"]
    assert a.key in {k["id"] for k in keys}


def _content(response) -> str:
    """The answer without a FHIR Bundle's links (which repeat the search's own parameters)."""
    try:
        data = response.json()
    except ValueError:
        return response.text
    if isinstance(data, dict):
        data.pop("link", None)
    return json.dumps(data)


def _own_write(response, a: A) -> bool:
    """A write outside A (a path without A's ids) that succeeded must have landed in the
    caller's own territory: no A id in what it created."""
    return not any(v in response.text for v in (a.t.id, a.t.practice_id, a.t.practitioner_id))
