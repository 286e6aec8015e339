"""The regulator's surnuméraire booking page over HTTP: the GPs who accept them, the daily
cap's 409 as a French message with the patient kept, French field errors, idempotency."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from app.scheduling.booking_models import Booking
from tests.test_web_dashboard import sign_in
from tests.test_web_pages import PATIENT, csrf_of, field_value


async def accept_overbooking(client, territory, cap=1) -> None:
    r = await client.patch(
        f"/v1/practitioners/{territory.practitioner_id}",
        json={"accepts_overbooking": True, "overbooking_daily_cap": cap},
        headers=territory.coordinator,
    )
    assert r.status_code == 200


async def overbooked(session, territory) -> int:
    return await session.scalar(
        select(func.count())
        .select_from(Booking)
        .where(
            Booking.practitioner_id == uuid.UUID(territory.practitioner_id),
            Booking.overbooked.is_(True),
        )
    )


async def test_no_gp_accepts_overbooking(client, territory):
    await sign_in(client, territory.regulator)
    page = await client.get("/regulation/surnumeraire")
    assert page.status_code == 200
    assert "Aucun médecin de vos territoires n'accepte" in unescape(page.text)
    assert 'href="/regulation/surnumeraire"' in (await client.get("/regulation")).text


async def test_regulator_overbooks_then_meets_the_daily_cap(client, territory, session, clock):
    clock.set(datetime(2027, 1, 13, 10, 0, tzinfo=ZoneInfo("Europe/Paris")))  # a Wednesday
    await accept_overbooking(client, territory, cap=1)
    await sign_in(client, territory.regulator)
    page = await client.get("/regulation/surnumeraire")
    assert "Dr Martin Claire, Maison de santé d&#39;Aurillac (Aurillac) — 1 par jour au plus" in (
        page.text
    )
    day = date(2027, 1, 14)
    data = {"csrf": csrf_of(page.text), "jeton": field_value(page.text, "jeton"),
            "practitioner_id": territory.practitioner_id, "start": f"{day}T18:30",
            "modality": "cabinet", "sas_case_ref": "SAS15-1", **PATIENT}  # fmt: skip
    r = await client.post(
        "/regulation/surnumeraire", data={**data, "start": "", "patient.phone": "1"}
    )
    assert r.status_code == 422
    assert 'id="start-error"' in r.text and 'id="patient-phone-error"' in r.text
    assert "Numéro de téléphone français invalide." in unescape(r.text)
    r = await client.post("/regulation/surnumeraire", data={**data, "start": "2020-01-01T10:00"})
    assert r.status_code == 422 and "Doit être dans le futur." in unescape(r.text)
    r = await client.post("/regulation/surnumeraire", data=data)
    assert r.status_code == 303, r.text
    booking = await client.get(r.headers["location"])
    text = unescape(booking.text)
    assert "Rendez-vous surnuméraire réservé." in text and "18:30" in text
    assert "surnuméraire" in text and "LEMOINE Jeanne" in text
    again = await client.post("/regulation/surnumeraire", data=data)  # double submission
    assert again.headers["location"] == r.headers["location"]
    assert await overbooked(session, territory) == 1
    page = await client.get("/regulation/surnumeraire")
    second = {**data, "jeton": field_value(page.text, "jeton"), "start": f"{day}T19:00",
              "patient.family_name": "Bernard"}  # fmt: skip
    r = await client.post("/regulation/surnumeraire", data=second)
    assert r.status_code == 409
    alert = unescape(r.text)
    assert "Le Dr Martin a déjà atteint son maximum de 1 rendez-vous surnuméraire(s) le" in alert
    assert 'role="alert"' in r.text
    assert 'name="patient.family_name" type="text" value="Bernard"' in r.text  # kept
    assert await overbooked(session, territory) == 1
    other_day = {**second, "start": f"{day + timedelta(days=1)}T09:00"}
    r = await client.post("/regulation/surnumeraire", data=other_day)
    assert r.status_code == 303
    assert await overbooked(session, territory) == 2


async def test_gp_who_refuses_overbooking_and_foreign_gp(client, territory, other_territory):
    await sign_in(client, territory.regulator)
    page = await client.get("/regulation/surnumeraire")  # no form: a stale one is posted
    data = {"csrf": csrf_of(page.text), "jeton": str(uuid.uuid4()),
            "practitioner_id": territory.practitioner_id,
            "start": f"{date.today() + timedelta(days=1)}T18:30", **PATIENT}  # fmt: skip
    r = await client.post("/regulation/surnumeraire", data=data)
    assert r.status_code == 409
    assert "Le Dr Martin n'accepte pas de patients en surnuméraire." in unescape(r.text)
    await accept_overbooking(client, territory)
    await accept_overbooking(client, other_territory)
    r = await client.post(
        "/regulation/surnumeraire",
        data={**data, "practitioner_id": other_territory.practitioner_id},
    )
    assert r.status_code == 422 and 'id="practitioner_id-error"' in r.text
    assert other_territory.practitioner_id not in r.text  # not offered either
    r = await client.post("/regulation/surnumeraire", data={**data, "practitioner_id": "x"})
    assert r.status_code == 422 and "Choisissez un médecin dans la liste." in unescape(r.text)
    client.cookies.clear()
    await sign_in(client, territory.practice)
    assert (await client.get("/regulation/surnumeraire")).status_code == 403


async def test_gps_are_listed_by_name_with_their_practice_and_town(client, territory, admin):
    from tests.conftest import practice_body, practitioner_body

    await accept_overbooking(client, territory, cap=2)
    r = await client.post(
        "/v1/practices",
        json=practice_body(territory.id, name="Cabinet d'Arpajon", commune_insee="15012",
                           city="Arpajon-sur-Cère", postal_code="15130"),
        headers=admin,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    body = practitioner_body(r.json()["id"], family_name="Élie", given_name="Anne",
                             accepts_overbooking=True, overbooking_daily_cap=1)  # fmt: skip
    assert (await client.post("/v1/practitioners", json=body, headers=admin)).status_code == 201
    await sign_in(client, territory.regulator)
    text = unescape((await client.get("/regulation/surnumeraire")).text)
    first = text.index("Dr Élie Anne, Cabinet d'Arpajon (Arpajon-sur-Cère) — 1 par jour au plus")
    assert first < text.index("Dr Martin Claire")  # É sorts with E, before M
