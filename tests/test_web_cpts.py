"""The CPTS's own slots page (/cpts): its practices and coordinator search the slots they may
book and book one, over HTTP."""

from __future__ import annotations

import uuid
from html import unescape

from sqlalchemy import func, select

from app.activity.audit import PatientAccess
from app.scheduling.booking_models import Booking
from tests.test_slot_search import add_slot
from tests.test_web_dashboard import sign_in
from tests.test_web_pages import PATIENT, csrf_of, field_value, slot_ids


async def test_the_practice_finds_only_the_slots_it_may_book_and_books_one_once(
    client, territory, session
):
    gp = territory.practitioner_id
    sas = await add_slot(client, territory, gp, 3)
    cpts = await add_slot(client, territory, gp, 4, visibility="cpts")
    public = await add_slot(client, territory, gp, 5, visibility="public")
    await sign_in(client, territory.practice, "/cpts")
    home = await client.get("/cabinet")
    assert 'href="/cpts">Créneaux CPTS</a>' in home.text
    r = await client.get("/cpts?rayon=30")
    assert r.status_code == 200, r.text
    html = r.text
    assert slot_ids(html) == [cpts, public] and sas not in html
    assert "réservé CPTS" in html and 'lang="fr"' in html
    data = {"csrf": csrf_of(html), "jeton": field_value(html, "jeton"), "slot_id": cpts,
            "rayon": "30", "reason": "plaie à recoudre", **PATIENT}  # fmt: skip
    booked = await client.post("/cpts/reserver", data=data)
    assert booked.status_code == 303, booked.text
    page = await client.get(booked.headers["location"])
    assert "Rendez-vous réservé." in page.text and "LEMOINE Jeanne" in page.text
    again = await client.post("/cpts/reserver", data=data)  # a double submission
    assert again.headers["location"] == booked.headers["location"]
    # This territory's bookings (other tests may leave committed data in the database).
    mine = select(Booking).where(Booking.territory_id == uuid.UUID(territory.id))
    rows = (await session.scalars(mine)).all()
    assert [str(b.slot_id) for b in rows] == [cpts] and rows[0].regulator_id is None
    reads = await session.scalar(
        select(func.count()).where(
            PatientAccess.action == "read", PatientAccess.territory_id == territory.id
        )
    )
    assert reads == 1  # the confirmation page showed the patient: written to the access log
    assert "LEMOINE Jeanne" in (await client.get("/rendez-vous")).text
    assert slot_ids((await client.get("/cpts?rayon=30")).text) == [public]


async def test_a_slot_taken_meanwhile_is_said_and_the_patient_kept(client, territory):
    cpts = await add_slot(client, territory, territory.practitioner_id, 3, visibility="cpts")
    later = await add_slot(client, territory, territory.practitioner_id, 4, visibility="cpts")
    await sign_in(client, territory.coordinator, "/cpts")
    html = (await client.get("/cpts")).text
    data = {"csrf": csrf_of(html), "jeton": field_value(html, "jeton"), "slot_id": cpts,
            "rayon": "30", **PATIENT}  # fmt: skip
    r = await client.post(
        "/v1/bookings",
        json={"slot_id": cpts, "hold": True},
        headers={**territory.practice, "Idempotency-Key": "0d6c2a53-4c2e-4f57-9a0e-4a1f5f0b7c11"},
    )
    assert r.status_code == 201, r.text
    taken = await client.post("/cpts/reserver", data=data)
    assert taken.status_code == 409
    html = unescape(taken.text)
    assert "vient d'être pris par quelqu'un d'autre" in html and 'value="Lemoine"' in html
    assert slot_ids(html) == [later]


async def test_the_page_is_closed_to_regulators_and_the_menu_says_so(client, territory):
    await sign_in(client, territory.regulator, "/regulation")
    r = await client.get("/cpts")
    assert r.status_code == 403
    assert 'href="/cpts"' not in (await client.get("/regulation")).text
    await sign_in(client, territory.coordinator, "/coordination")
    assert 'href="/cpts">Créneaux CPTS</a>' in (await client.get("/coordination")).text
