"""Surnuméraire guards on POST /v1/bookings/overbook and their settings: the GP's absences,
surnuméraire hours and modalities, the territory's SNP window; a home visit's address."""

from __future__ import annotations

from datetime import datetime, timedelta
from html import unescape
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import assert_problem
from tests.test_bookings import PATIENT, idem
from tests.test_web_dashboard import sign_in
from tests.test_web_pages import PATIENT as PAGE_PATIENT
from tests.test_web_pages import csrf_of, field_value

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2027, 1, 13, 10, 0, tzinfo=PARIS)  # a Wednesday


async def accepting(client, t, **settings: Any) -> dict[str, Any]:
    r = await client.patch(
        f"/v1/practitioners/{t.practitioner_id}",
        json={"accepts_overbooking": True, "overbooking_daily_cap": 5, **settings},
        headers=t.coordinator,
    )
    assert r.status_code == 200, r.text
    return r.json()


async def overbook(client, t, start: datetime, **over: Any):
    body = {"practitioner_id": t.practitioner_id, "start": start.isoformat(), "patient": PATIENT}
    return await client.post(
        "/v1/bookings/overbook", json={**body, **over}, headers={**t.regulator, **idem()}
    )


async def test_practitioner_surnumeraire_settings_default_and_round_trip(client, territory):
    path = f"/v1/practitioners/{territory.practitioner_id}"
    gp = (await client.get(path, headers=territory.coordinator)).json()
    assert (gp["overbooking_start_time"], gp["overbooking_end_time"]) == ("08:00:00", "20:00:00")
    assert gp["overbooking_modalities"] is None
    gp = await accepting(
        client, territory, overbooking_start_time="09:30", overbooking_end_time="18:00",
        overbooking_modalities=["visite", "cabinet", "visite"],
    )  # fmt: skip
    assert gp["overbooking_start_time"] == "09:30:00"
    assert gp["overbooking_modalities"] == ["cabinet", "visite"]
    r = await client.patch(path, json={"overbooking_modalities": ["ailleurs"]},
                           headers=territory.coordinator)  # fmt: skip
    assert_problem(r, 422)
    r = await client.patch(path, json={"overbooking_start_time": None},
                           headers=territory.coordinator)  # fmt: skip
    assert_problem(r, 422)


async def test_territory_snp_window_defaults_to_48_hours_and_is_editable(client, territory, admin):
    path = f"/v1/territories/{territory.id}"
    assert (await client.get(path, headers=admin)).json()["snp_window_hours"] == 48
    r = await client.patch(path, json={"snp_window_hours": 72}, headers=territory.coordinator)
    assert r.status_code == 200, r.text
    assert r.json()["snp_window_hours"] == 72
    r = await client.patch(path, json={"snp_window_hours": 0}, headers=territory.coordinator)
    assert_problem(r, 422)


async def test_a_surnumeraire_inside_an_absence_is_a_409(client, territory, clock):
    clock.set(NOW)
    await accepting(client, territory)
    r = await client.post(
        f"/v1/practitioners/{territory.practitioner_id}/unavailabilities",
        json={"start": "2027-01-14T00:00:00+01:00", "end": "2027-01-15T00:00:00+01:00",
              "reason": "congé"},
        headers=territory.practice,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    problem = assert_problem(
        await overbook(client, territory, datetime(2027, 1, 14, 10, tzinfo=PARIS)), 409
    )
    assert problem["refusal"] == "unavailable"
    assert problem["unavailable_from"] == "2027-01-14T00:00:00+01:00"
    r = await overbook(client, territory, datetime(2027, 1, 15, 10, tzinfo=PARIS))
    assert r.status_code == 201, r.text


async def test_a_surnumeraire_outside_the_gps_hours_is_a_409(client, territory, clock):
    clock.set(NOW)
    await accepting(client, territory)
    problem = assert_problem(
        await overbook(client, territory, datetime(2027, 1, 14, 3, tzinfo=PARIS)), 409
    )
    assert (problem["refusal"], problem["hours_start"], problem["hours_end"]) == (
        "hours", "08:00", "20:00",
    )  # fmt: skip
    # Ending after 20:00 is outside too; 19:45-20:00 is the last one inside.
    late = datetime(2027, 1, 14, 19, 50, tzinfo=PARIS)
    assert_problem(await overbook(client, territory, late), 409)
    last = datetime(2027, 1, 14, 19, 45, tzinfo=PARIS)
    assert (await overbook(client, territory, last)).status_code == 201


async def test_a_gps_own_night_hours_are_honoured(client, territory, clock):
    clock.set(NOW)
    await accepting(client, territory, overbooking_start_time="20:00",
                    overbooking_end_time="08:00")  # fmt: skip
    r = await overbook(client, territory, datetime(2027, 1, 14, 3, tzinfo=PARIS))
    assert r.status_code == 201, r.text
    problem = assert_problem(
        await overbook(client, territory, datetime(2027, 1, 14, 10, tzinfo=PARIS)), 409
    )
    assert problem["refusal"] == "hours"


async def test_equal_start_and_end_hours_accept_a_surnumeraire_across_midnight(
    client, territory, clock
):
    """00:00-00:00 (or 08:00-08:00) is round the clock: every instant is inside, so a
    consultation over midnight (or over 08:00) is inside too."""
    clock.set(NOW)
    await accepting(client, territory, overbooking_start_time="00:00",
                    overbooking_end_time="00:00")  # fmt: skip
    r = await overbook(client, territory, datetime(2027, 1, 13, 23, 50, tzinfo=PARIS))
    assert r.status_code == 201, r.text
    await accepting(client, territory, overbooking_start_time="08:00",
                    overbooking_end_time="08:00")  # fmt: skip
    r = await overbook(client, territory, datetime(2027, 1, 14, 7, 50, tzinfo=PARIS))
    assert r.status_code == 201, r.text


async def test_a_modality_the_gp_does_not_accept_is_a_409(client, territory, clock):
    clock.set(NOW)
    await accepting(client, territory)  # no rule, no list: the practice only
    at = datetime(2027, 1, 14, 10, tzinfo=PARIS)
    problem = assert_problem(
        await overbook(client, territory, at, modality="visite",
                       visit_address="3 rue des Lilas, 15000 Aurillac"),
        409,
    )  # fmt: skip
    assert (problem["refusal"], problem["accepted"]) == ("modality", ["cabinet"])
    await accepting(client, territory, overbooking_modalities=["teleconsultation"])
    assert_problem(await overbook(client, territory, at), 409)
    assert (await overbook(client, territory, at, modality="teleconsultation")).status_code == 201


async def test_by_default_the_gp_accepts_the_modalities_of_its_rules(client, territory, clock):
    clock.set(NOW)
    await accepting(client, territory)
    r = await client.post(
        f"/v1/practitioners/{territory.practitioner_id}/availability-rules",
        json={"rrule": "FREQ=WEEKLY;BYDAY=MO", "start_time": "14:00", "end_time": "16:00",
              "slot_minutes": 30, "modality": "teleconsultation", "visibility": "sas",
              "valid_from": "2027-01-01"},
        headers=territory.practice,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    at = datetime(2027, 1, 14, 10, tzinfo=PARIS)
    problem = assert_problem(await overbook(client, territory, at), 409)
    assert problem["accepted"] == ["teleconsultation"]
    assert (await overbook(client, territory, at, modality="teleconsultation")).status_code == 201


async def test_a_surnumeraire_beyond_the_snp_window_is_a_422(client, territory, clock):
    clock.set(NOW)
    await accepting(client, territory)
    problem = assert_problem(await overbook(client, territory, NOW + timedelta(days=60)), 422)
    assert (problem["refusal"], problem["window_hours"]) == ("snp_window", 48)
    assert problem["errors"][0]["loc"] == ["body", "start"]
    r = await client.patch(f"/v1/territories/{territory.id}", json={"snp_window_hours": 96},
                           headers=territory.coordinator)  # fmt: skip
    assert r.status_code == 200
    r = await overbook(client, territory, datetime(2027, 1, 16, 10, tzinfo=PARIS))  # 72 h
    assert r.status_code == 201, r.text


async def test_a_home_visit_carries_its_address(client, territory, clock):
    clock.set(NOW)
    await accepting(client, territory, overbooking_modalities=["visite"])
    at = datetime(2027, 1, 14, 10, tzinfo=PARIS)
    assert_problem(await overbook(client, territory, at, modality="visite"), 422)
    r = await overbook(client, territory, at, modality="visite",
                       visit_address="3 rue des Lilas, 15000 Aurillac")  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["visit_address"] == "3 rue des Lilas, 15000 Aurillac"
    seen = await client.get(f"/v1/bookings/{r.json()['id']}", headers=territory.practice)
    assert seen.json()["visit_address"] == "3 rue des Lilas, 15000 Aurillac"


async def _page_refusal(client, territory, start: str, **over: str):
    await sign_in(client, territory.regulator)
    page = await client.get("/regulation/surnumeraire")
    data = {"csrf": csrf_of(page.text), "jeton": field_value(page.text, "jeton"),
            "practitioner_id": territory.practitioner_id, "start": start,
            "modality": "cabinet", **PAGE_PATIENT, **over}  # fmt: skip
    return await client.post("/regulation/surnumeraire", data=data)


async def test_the_overbook_page_says_each_refusal_in_french(client, territory, clock):
    clock.set(NOW)
    await accepting(client, territory)
    r = await _page_refusal(client, territory, "2027-01-14T03:00")
    assert r.status_code == 409
    assert "reçoit les surnuméraires de 08:00 à 20:00 (heure locale)" in unescape(r.text)
    assert "LEMOINE" in r.text.upper()  # the patient kept
    r = await _page_refusal(client, territory, "2027-01-14T10:00", modality="teleconsultation")
    assert r.status_code == 409
    assert "ne reçoit pas de surnuméraire en téléconsultation" in unescape(r.text)
    r = await _page_refusal(client, territory, "2027-03-14T10:00")
    assert r.status_code == 422
    assert "dans les 48 heures qui viennent" in unescape(r.text)
    await client.post(
        f"/v1/practitioners/{territory.practitioner_id}/unavailabilities",
        json={"start": "2027-01-14T00:00:00+01:00", "end": "2027-01-15T00:00:00+01:00"},
        headers=territory.practice,
    )
    r = await _page_refusal(client, territory, "2027-01-14T10:00")
    assert r.status_code == 409
    assert "est absent du 14 janvier 2027 à 00:00" in unescape(r.text)


async def test_a_home_visit_slot_booking_carries_the_address_given_with_the_hold_or_confirm(
    client, territory
):
    from tests.test_bookings import book
    from tests.test_slot_search import add_slot

    slot_id = await add_slot(client, territory, territory.practitioner_id, 3, modality="visite")
    held = await book(client, territory, slot_id, hold=True, patient=PATIENT,
                      visit_address="3 rue des Lilas")  # fmt: skip
    assert held.json()["visit_address"] == "3 rue des Lilas"
    r = await client.post(
        f"/v1/bookings/{held.json()['id']}/confirm",
        json={"visit_address": "5 rue des Lilas, 15000 Aurillac"},
        headers=territory.regulator,
    )
    assert r.status_code == 200, r.text
    assert r.json()["visit_address"] == "5 rue des Lilas, 15000 Aurillac"


async def test_the_coordinator_sets_surnumeraire_hours_and_modalities_on_the_gp_page(
    client, territory, session
):
    from app.directory.models import Practitioner
    from tests.test_web_directory import field_value as value_of

    await sign_in(client, territory.coordinator)
    url = f"/coordination/annuaire/medecins/{territory.practitioner_id}"
    form = await client.get(url)
    assert value_of(form.text, "overbooking_start_time") == "08:00"
    data = {"csrf": csrf_of(form.text), "practice_id": territory.practice_id,
            "rpps": value_of(form.text, "rpps"), "family_name": "Martin", "given_name": "Claire",
            "accepts_overbooking": "true", "overbooking_daily_cap": "2", "mt_capacity": "0",
            "overbooking_start_time": "18:00", "overbooking_end_time": "23:00",
            "overbooking_modality_visite": "true"}  # fmt: skip
    r = await client.post(url, data=data)
    assert r.status_code == 303, r.text
    gp = await session.get(Practitioner, territory.practitioner_id)
    await session.refresh(gp)
    assert (f"{gp.overbooking_start_time:%H:%M}", f"{gp.overbooking_end_time:%H:%M}") == (
        "18:00", "23:00",
    )  # fmt: skip
    assert gp.overbooking_modalities == ["visite"]
    page = await client.get(url)
    assert 'name="overbooking_modality_visite" value="true" checked' in page.text


# In the agenda and in an absence's conflicts ----------------------------------------------


async def _a_surnumeraire(client, territory, clock) -> dict[str, Any]:
    clock.set(NOW)
    await accepting(client, territory)
    r = await overbook(client, territory, datetime(2027, 1, 14, 10, tzinfo=PARIS))
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_surnumeraire_is_in_the_gps_agenda(client, territory, clock):
    booking = await _a_surnumeraire(client, territory, clock)
    agenda = (
        await client.get(
            f"/v1/practitioners/{territory.practitioner_id}/slots",
            params={"from": "2027-01-14T00:00:00+01:00", "to": "2027-01-15T00:00:00+01:00"},
            headers=territory.practice,
        )
    ).json()
    assert [(s["id"], s["source"], s["status"], s["start"]) for s in agenda] == [
        (booking["id"], "overbook", "booked", "2027-01-14T10:00:00+01:00")
    ]


async def test_a_cancelled_surnumeraire_leaves_the_agenda(client, territory, clock):
    booking = await _a_surnumeraire(client, territory, clock)
    r = await client.post(f"/v1/bookings/{booking['id']}/cancel", json={"reason": "mieux"},
                          headers=territory.regulator)  # fmt: skip
    assert r.status_code == 200, r.text
    agenda = (
        await client.get(
            f"/v1/practitioners/{territory.practitioner_id}/slots",
            params={"from": "2027-01-14T00:00:00+01:00", "to": "2027-01-15T00:00:00+01:00"},
            headers=territory.practice,
        )
    ).json()
    assert agenda == []


async def test_the_agenda_page_shows_a_surnumeraire_with_its_patient(client, territory, clock):
    await _a_surnumeraire(client, territory, clock)
    await sign_in(client, territory.practice)
    page = await client.get(
        f"/cabinet/medecins/{territory.practitioner_id}", params={"semaine": "2027-01-11"}
    )
    text = unescape(page.text)
    assert page.status_code == 200
    assert "Surnuméraire" in text and "LEMOINE Jeanne" in text


async def test_an_absence_over_a_surnumeraire_reports_it_as_a_conflict(client, territory, clock):
    booking = await _a_surnumeraire(client, territory, clock)
    r = await client.post(
        f"/v1/practitioners/{territory.practitioner_id}/unavailabilities",
        json={"start": "2027-01-14T08:00:00+01:00", "end": "2027-01-14T12:00:00+01:00"},
        headers=territory.practice,
    )
    assert r.status_code == 201, r.text
    assert [(c["slot_id"], c["booking_id"], c["status"]) for c in r.json()["conflicts"]] == [
        (None, booking["id"], "booked")
    ]
    await sign_in(client, territory.practice)
    page = await client.get(
        f"/cabinet/medecins/{territory.practitioner_id}/absences/{r.json()['id']}"
    )
    assert "Aucun rendez-vous réservé pendant cette absence" not in unescape(page.text)
    assert f"/rendez-vous/{booking['id']}" in page.text
