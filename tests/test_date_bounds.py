"""Every date and timestamp the service accepts lies between 2000-01-01 and 2100-12-31: beyond,
a 422 naming the field (an OperationOutcome under /fhir, a French page or field message on the
pages), never a 500 from a date overflow, and nothing is written."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from app.scheduling.models import AvailabilityRule, Slot, Unavailability
from tests.conftest import assert_problem
from tests.test_bookings import PATIENT, idem
from tests.test_web_dashboard import sign_in
from tests.test_web_pages import csrf_of, rule_form

FAR = "9999-12-31"
FAR_INSTANT = "9999-12-31T23:00:00-05:00"  # beyond datetime.max once in UTC
EARLY_INSTANT = "0001-01-01T00:30:00+01:00"  # before datetime.min once in UTC
RULE = {
    "rrule": "FREQ=WEEKLY;BYDAY=MO",
    "start_time": "17:00",
    "end_time": "19:00",
    "slot_minutes": 20,
    "modality": "cabinet",
    "visibility": "sas",
}
RANGE_MSG = "must be between 2000-01-01 and 2100-12-31"


async def _count(session, model):
    return await session.scalar(select(func.count()).select_from(model))


def _assert_out_of_range(response, loc):
    body = assert_problem(response, 422, "/validation-error")
    assert any(e["loc"] == loc and RANGE_MSG in e["msg"] for e in body["errors"]), body


@pytest.mark.parametrize(
    ("field", "value"),
    [("valid_from", FAR), ("valid_from", "1999-12-31"), ("valid_until", "2101-01-01")],
)
async def test_a_rule_valid_outside_2000_2100_is_a_422(client, territory, session, field, value):
    before = await _count(session, AvailabilityRule)
    body = {**RULE, "valid_from": date.today().isoformat(), field: value}
    r = await client.post(
        f"/v1/practitioners/{territory.practitioner_id}/availability-rules",
        json=body,
        headers=territory.coordinator,
    )
    _assert_out_of_range(r, [field])
    assert await _count(session, AvailabilityRule) == before


async def test_a_rule_valid_until_the_last_day_of_2100_is_accepted(client, territory):
    body = {**RULE, "valid_from": date.today().isoformat(), "valid_until": "2100-12-31"}
    r = await client.post(
        f"/v1/practitioners/{territory.practitioner_id}/availability-rules",
        json=body,
        headers=territory.coordinator,
    )
    assert r.status_code == 201, r.text


async def test_a_rule_changed_to_end_beyond_2100_is_a_422(client, territory):
    body = {**RULE, "valid_from": date.today().isoformat()}
    path = f"/v1/practitioners/{territory.practitioner_id}/availability-rules"
    rule = (await client.post(path, json=body, headers=territory.coordinator)).json()
    r = await client.patch(
        f"{path}/{rule['id']}", json={"valid_until": FAR}, headers=territory.coordinator
    )
    _assert_out_of_range(r, ["valid_until"])


@pytest.mark.parametrize("instant", [FAR_INSTANT, EARLY_INSTANT])
async def test_a_one_off_slot_outside_2000_2100_is_a_422(client, territory, session, instant):
    before = await _count(session, Slot)
    r = await client.post(
        f"/v1/practitioners/{territory.practitioner_id}/slots",
        json={"start": instant, "end": instant, "modality": "cabinet", "visibility": "sas"},
        headers=territory.coordinator,
    )
    _assert_out_of_range(r, ["start"])
    assert await _count(session, Slot) == before


async def test_an_unavailability_ending_beyond_2100_is_a_422(client, territory, session):
    before = await _count(session, Unavailability)
    r = await client.post(
        f"/v1/practitioners/{territory.practitioner_id}/unavailabilities",
        json={"start": "2030-01-01T00:00:00+01:00", "end": FAR_INSTANT},
        headers=territory.coordinator,
    )
    _assert_out_of_range(r, ["end"])
    assert await _count(session, Unavailability) == before


async def test_a_surnumeraire_beyond_2100_is_a_422(client, territory):
    r = await client.post(
        "/v1/bookings/overbook",
        json={
            "practitioner_id": territory.practitioner_id,
            "start": "9999-12-31T23:50:00+00:00",
            "patient": PATIENT,
        },
        headers={**territory.regulator, **idem()},
    )
    _assert_out_of_range(r, ["start"])


async def test_a_birth_date_in_year_9999_is_a_422(client, territory):
    r = await client.post(
        "/v1/bookings/overbook",
        json={
            "practitioner_id": territory.practitioner_id,
            "start": "2030-01-01T10:00:00+01:00",
            "patient": {**PATIENT, "birth_date": FAR},
        },
        headers={**territory.regulator, **idem()},
    )
    body = assert_problem(r, 422)
    assert body["errors"][0]["loc"] == ["patient", "birth_date"]


@pytest.mark.parametrize(
    ("path", "param", "value", "role"),
    [
        ("/v1/slots", "from", "9999-12-31T00:00:00+00:00", "regulator"),
        ("/v1/slots", "to", FAR_INSTANT, "regulator"),
        ("/v1/slots", "from", EARLY_INSTANT, "regulator"),
        ("/v1/bookings", "from", FAR_INSTANT, "coordinator"),
        ("/v1/bookings", "to", EARLY_INSTANT, "coordinator"),
        ("/v1/practitioners/{practitioner_id}/slots", "from", FAR_INSTANT, "coordinator"),
        ("/v1/practitioners/{practitioner_id}/slots", "to", EARLY_INSTANT, "coordinator"),
        ("/v1/indicators", "from", FAR, "coordinator"),
        ("/v1/indicators", "to", "0001-01-01", "coordinator"),
        ("/v1/activity", "from", FAR_INSTANT, "coordinator"),
        ("/v1/activity", "to", EARLY_INSTANT, "coordinator"),
    ],
)
async def test_a_query_date_outside_2000_2100_is_a_422(client, territory, path, param, value, role):
    r = await client.get(
        path.format(practitioner_id=territory.practitioner_id),
        params={param: value},
        headers=getattr(territory, role),
    )
    _assert_out_of_range(r, ["query", param])


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/fhir/Slot", {"start": f"ge{FAR_INSTANT}"}),
        ("/fhir/Slot", {"start": "lt0001-01-01T00:30:00+01:00"}),
        ("/fhir/Appointment", {"date": f"ge{FAR_INSTANT}"}),
        ("/fhir/$bulk-publish", {"_since": FAR_INSTANT}),
        ("/fhir/$bulk-publish/Slot.ndjson", {"_since": FAR_INSTANT}),
    ],
)
async def test_a_fhir_date_outside_2000_2100_is_a_422_operation_outcome(
    client, territory, path, query
):
    r = await client.get(path, params=query, headers=territory.regulator)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert any(RANGE_MSG in issue["diagnostics"] for issue in outcome["issue"])


@pytest.mark.parametrize(
    ("role", "path", "param"),
    [
        ("practice", "/cabinet", "semaine"),
        ("practice", "/cabinet/medecins/{practitioner_id}", "semaine"),
        ("coordinator", "/rendez-vous", "du"),
    ],
)
async def test_a_page_date_outside_2000_2100_is_a_422_french_page(
    client, territory, role, path, param
):
    await sign_in(client, getattr(territory, role), "/accueil")
    r = await client.get(
        path.format(practitioner_id=territory.practitioner_id), params={param: FAR}
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "Adresse ou formulaire invalide" in r.text


async def test_a_rule_form_valid_beyond_2100_says_so_in_french_next_to_the_field(
    client, territory, session
):
    await sign_in(client, territory.practice, "/cabinet")
    url = f"/cabinet/medecins/{territory.practitioner_id}/regles/nouvelle"
    csrf = csrf_of((await client.get(url)).text)
    before = await _count(session, AvailabilityRule)
    for action in ("apercu", "publier"):
        r = await client.post(url, data=rule_form(csrf, action, valid_from=FAR))
        assert r.status_code == 422, r.text
        assert 'id="valid_from-error"' in r.text
        assert "La date doit être comprise entre 2000 et 2100." in r.text
    assert await _count(session, AvailabilityRule) == before


@pytest.mark.parametrize(
    ("start", "end"),
    [("0001-01-01T00:05", "0001-01-01T01:00"), ("9999-12-31T23:00", "2030-01-01T10:00")],
)
async def test_a_slot_form_outside_2000_2100_says_so_in_french_next_to_the_field(
    client, territory, session, start, end
):
    await sign_in(client, territory.practice, "/cabinet")
    base = f"/cabinet/medecins/{territory.practitioner_id}"
    csrf = csrf_of((await client.get(f"{base}/creneau")).text)
    before = await _count(session, Slot)
    r = await client.post(
        f"{base}/creneau",
        data={"csrf": csrf, "start": start, "end": end, "modality": "cabinet",
              "visibility": "sas"},
    )  # fmt: skip
    assert r.status_code == 422, r.text
    assert 'id="start-error"' in r.text
    assert "La date doit être comprise entre 2000 et 2100." in r.text
    assert await _count(session, Slot) == before
