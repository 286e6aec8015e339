"""The practice, regulator and booking pages over HTTP: the same services and rules as the
API, CSRF on every form, French errors next to their fields, and each role's boundaries."""

from __future__ import annotations

import re
from datetime import date
from html import unescape

import httpx
from sqlalchemy import func, select

from app.activity.audit import PatientAccess
from app.scheduling.models import AvailabilityRule, Slot
from tests.conftest import Territory
from tests.test_web_dashboard import sign_in

ALL_DAY = {
    "rrule": "FREQ=DAILY",
    "start_time": "00:00",
    "end_time": "00:00",
    "slot_minutes": 60,
    "modality": "cabinet",
    "visibility": "sas",
}
PATIENT = {
    "patient.family_name": "Lemoine",
    "patient.given_name": "Jeanne",
    "patient.birth_date": "1948-05-02",
    "patient.phone": "06 12 34 56 78",
}


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def field_value(html: str, name: str) -> str:
    match = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    assert match, f"no field {name}"
    return match.group(1)


async def publish_all_day(client: httpx.AsyncClient, t: Territory) -> None:
    body = {**ALL_DAY, "valid_from": date.today().isoformat()}
    r = await client.post(
        f"/v1/practitioners/{t.practitioner_id}/availability-rules",
        json=body,
        headers=t.coordinator,
    )
    assert r.status_code == 201, r.text


def rule_form(csrf: str, action: str, **over: str) -> dict[str, str | list[str]]:
    fields = {
        "csrf": csrf,
        "intervalle": "1",
        "start_time": "17:00",
        "end_time": "19:00",
        "slot_minutes": "20",
        "modality": "cabinet",
        "visibility": "sas",
        "valid_from": date.today().isoformat(),
        "valid_until": "",
        "rrule": "",
        "action": action,
        **over,
    }
    return {**fields, "jours": ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]}


async def slot_count(session, t: Territory) -> int:
    """The territory's GP's slots (other tests may leave committed data in the database)."""
    stmt = select(func.count()).select_from(Slot).where(Slot.practitioner_id == t.practitioner_id)
    return await session.scalar(stmt) or 0


async def rule_count(session, t: Territory) -> int:
    stmt = select(func.count()).where(AvailabilityRule.practitioner_id == t.practitioner_id)
    return await session.scalar(stmt) or 0


# Practice ---------------------------------------------------------------------------------


async def test_practice_previews_then_publishes_a_rule_and_sees_its_slots(
    client, territory, session
):
    r = await sign_in(client, territory.practice, next_="/accueil")
    assert r.headers["location"] == "/accueil"
    assert (await client.get("/accueil")).headers["location"] == "/cabinet"
    home = await client.get("/cabinet")
    assert home.status_code == 200 and "Dr Claire Martin" in home.text
    url = f"/cabinet/medecins/{territory.practitioner_id}/regles/nouvelle"
    form = await client.get(url)
    preview = await client.post(url, data=rule_form(csrf_of(form.text), "apercu"))
    assert preview.status_code == 200, preview.text
    shown = int(re.search(r"Aperçu : (\d+) créneau", preview.text).group(1))
    assert shown > 0 and await slot_count(session, territory) == 0  # a preview writes nothing
    assert "17:00" in preview.text and "18:40" in preview.text
    published = await client.post(url, data=rule_form(csrf_of(form.text), "publier"))
    assert published.status_code == 303
    assert published.headers["location"] == f"/cabinet/medecins/{territory.practitioner_id}"
    assert await slot_count(session, territory) == shown  # exactly the slots the preview announced
    page = await client.get(published.headers["location"])
    assert f"Règle publiée : {shown} créneaux créés." in page.text
    assert "chaque lundi, mardi, mercredi, jeudi, vendredi, samedi, dimanche" in page.text
    first = await session.scalar(
        select(func.min(Slot.start)).where(Slot.practitioner_id == territory.practitioner_id)
    )
    week = await client.get(f"{published.headers['location']}?semaine={first.date()}")
    assert "Libre" in week.text and "17:00–17:20" in week.text
    assert "creneau_flash" in page.headers.get("set-cookie", "")  # shown once, then gone


async def test_rule_errors_are_french_and_next_to_their_fields(client, territory, session):
    await sign_in(client, territory.practice)
    url = f"/cabinet/medecins/{territory.practitioner_id}/regles/nouvelle"
    csrf = csrf_of((await client.get(url)).text)
    data = {k: v for k, v in rule_form(csrf, "publier", slot_minutes="25").items() if k != "jours"}
    r = await client.post(url, data=data)
    assert r.status_code == 422
    assert 'id="jours-error"' in r.text and "Cochez au moins un jour." in r.text
    r = await client.post(url, data=rule_form(csrf, "publier", slot_minutes="25"))
    assert r.status_code == 422
    assert 'id="slot_minutes-error"' in r.text and 'aria-invalid="true"' in r.text
    assert await rule_count(session, territory) == 0


async def test_overlapping_rule_is_refused_with_the_first_clash(client, territory):
    await publish_all_day(client, territory)
    await sign_in(client, territory.practice)
    url = f"/cabinet/medecins/{territory.practitioner_id}/regles/nouvelle"
    csrf = csrf_of((await client.get(url)).text)
    preview = await client.post(url, data=rule_form(csrf, "apercu"))
    assert "chevauche" in preview.text and "(déjà pris)" in preview.text
    r = await client.post(url, data=rule_form(csrf, "publier"))
    assert r.status_code == 409 and "créneaux existants de ce médecin sont" in r.text


async def test_edit_and_end_a_rule(client, territory, session):
    await publish_all_day(client, territory)
    rule = await session.scalar(
        select(AvailabilityRule).where(
            AvailabilityRule.practitioner_id == territory.practitioner_id
        )
    )
    await sign_in(client, territory.practice)
    url = f"/cabinet/medecins/{territory.practitioner_id}/regles/{rule.id}"
    form = await client.get(url)
    assert form.status_code == 200 and 'value="FREQ=DAILY"' in form.text
    edited = await client.post(
        url,
        data=rule_form(
            csrf_of(form.text), "publier", start_time="08:00", end_time="12:00", slot_minutes="30"
        ),
    )
    assert edited.status_code == 303
    page = await client.get(edited.headers["location"])
    assert "Règle modifiée" in page.text and "de 08:00 à 12:00" in page.text
    asked = await client.post(f"{url}/terminer", data={"csrf": csrf_of(page.text)})
    assert asked.status_code == 200 and "Terminer cette règle ?" in asked.text
    assert await rule_count(session, territory) == 1  # nothing happens before the confirmation
    assert f'action="{url}/terminer"' in asked.text and 'name="confirme" value="oui"' in asked.text
    ended = await client.post(
        f"{url}/terminer", data={"csrf": csrf_of(asked.text), "confirme": "oui"}
    )
    assert ended.status_code == 303
    assert await rule_count(session, territory) == 0


async def test_one_off_slot_and_absence_with_its_conflicts(client, territory, session):
    await sign_in(client, territory.practice)
    base = f"/cabinet/medecins/{territory.practitioner_id}"
    csrf = csrf_of((await client.get(f"{base}/creneau")).text)
    day = date.fromordinal(date.today().toordinal() + 3).isoformat()
    r = await client.post(
        f"{base}/creneau",
        data={"csrf": csrf, "start": f"{day}T10:00", "end": f"{day}T10:30",
              "modality": "visite", "visibility": "sas"},
    )  # fmt: skip
    assert r.status_code == 303, r.text
    assert "Créneau ajouté le" in (await client.get(r.headers["location"])).text
    slot = await session.scalar(
        select(Slot).where(Slot.practitioner_id == territory.practitioner_id)
    )
    assert slot.start.isoformat().startswith(day)
    bad = await client.post(
        f"{base}/creneau",
        data={"csrf": csrf, "start": f"{day}T11:00", "end": f"{day}T10:00",
              "modality": "visite", "visibility": "sas"},
    )  # fmt: skip
    assert bad.status_code == 422 and "La fin doit être après le début." in bad.text
    # Book it through the API, then declare an absence over it.
    r = await client.post(
        "/v1/bookings",
        json={"slot_id": str(slot.id), "patient": {"family_name": "Lemoine",
              "given_name": "Jeanne", "birth_date": "1948-05-02", "phone": "0612345678"}},
        headers={**territory.regulator, "Idempotency-Key": "k1"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    r = await client.post(
        f"{base}/absence",
        data={"csrf": csrf, "start": f"{day}T08:00", "end": f"{day}T18:00", "reason": "Congés"},
    )
    assert r.status_code == 303
    page = await client.get(r.headers["location"])
    assert "1 rendez-vous réservé à traiter" in page.text
    assert "LEMOINE Jeanne" in page.text
    assert '<a href="tel:+33612345678">06 12 34 56 78</a>' in page.text


async def test_practice_cannot_open_another_practice_and_regulator_no_practice_page(
    client, territory, other_territory
):
    await sign_in(client, territory.practice)
    r = await client.get(f"/cabinet/medecins/{other_territory.practitioner_id}")
    assert r.status_code == 404 and "Page introuvable" in r.text
    assert r.headers["content-type"].startswith("text/html")
    r = await client.get(f"/cabinet?cabinet={other_territory.practice_id}")
    assert r.status_code == 200 and "CPTS Autre" not in r.text  # always its own practice
    client.cookies.clear()
    await sign_in(client, territory.regulator)
    r = await client.get(f"/cabinet/medecins/{territory.practitioner_id}")
    assert r.status_code == 403 and "Accès refusé" in r.text


async def test_forms_need_the_csrf_token(client, territory, session):
    await sign_in(client, territory.practice)
    url = f"/cabinet/medecins/{territory.practitioner_id}/regles/nouvelle"
    r = await client.post(url, data=rule_form("forged", "publier"))
    assert r.status_code == 403 and "jeton de sécurité" in r.text
    assert await rule_count(session, territory) == 0


async def test_pages_send_visitors_to_sign_in_with_the_way_back(client):
    r = await client.get("/regulation?commune=15014")
    assert r.status_code == 303
    assert r.headers["location"] == "/connexion?next=/regulation%3Fcommune%3D15014"


# Regulator --------------------------------------------------------------------------------


async def search(client: httpx.AsyncClient, query: str = "commune=15014&rayon=30") -> str:
    r = await client.get(f"/regulation?{query}")
    assert r.status_code == 200, r.text
    return r.text


def slot_ids(html: str) -> list[str]:
    return re.findall(r'name="slot_id" id="slot-[^"]+" value="([^"]+)"', html)


async def test_regulator_finds_and_books_a_slot(client, territory, session):
    await publish_all_day(client, territory)
    await sign_in(client, territory.regulator)
    assert (await client.get("/accueil")).headers["location"] == "/regulation"
    html = await search(client)
    ids = slot_ids(html)
    assert len(ids) >= 24 and "distance à partir du centre de" in html
    assert "Dr Claire Martin" in html and "km" in html
    data = {"csrf": csrf_of(html), "jeton": field_value(html, "jeton"), "slot_id": ids[0],
            "commune": "15014", "rayon": "30", "sas_case_ref": "SAS15-1", **PATIENT}  # fmt: skip
    r = await client.post("/regulation/reserver", data=data)
    assert r.status_code == 303, r.text
    page = await client.get(r.headers["location"])
    assert "Rendez-vous réservé." in page.text and "LEMOINE Jeanne" in page.text
    assert "SAS15-1" in page.text and "Annuler le rendez-vous" in page.text
    again = await client.post("/regulation/reserver", data=data)  # a double submission
    assert again.headers["location"] == r.headers["location"]  # books once
    reads = await session.scalar(
        select(func.count()).where(
            PatientAccess.action == "read", PatientAccess.territory_id == territory.id
        )
    )
    assert reads == 1
    assert ids[0] not in slot_ids(await search(client))


async def test_second_regulator_sees_just_taken_and_the_next_options(
    client, territory, settings, sessionmaker
):
    await publish_all_day(client, territory)
    from app.main import create_app

    app = create_app(settings)
    app.state.sessionmaker = sessionmaker
    other = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    async with other:
        await sign_in(client, territory.regulator)
        await sign_in(other, territory.regulator)
        first, second = await search(client), await search(other)
        slot = slot_ids(first)[0]
        for c, html in ((client, first), (other, second)):
            data = {"csrf": csrf_of(html), "jeton": field_value(html, "jeton"),
                    "slot_id": slot, "commune": "15014", "rayon": "30", **PATIENT}  # fmt: skip
            r = await c.post("/regulation/reserver", data=data)
        assert r.status_code == 409
        assert "Ce créneau vient d'être pris par un autre régulateur." in unescape(r.text)
        assert 'value="Lemoine"' in r.text  # the patient's details stay
        assert slot not in slot_ids(r.text) and slot_ids(r.text)  # the next options


async def test_booking_errors_are_next_to_their_fields(client, territory):
    await publish_all_day(client, territory)
    await sign_in(client, territory.regulator)
    html = await search(client)
    data = {"csrf": csrf_of(html), "jeton": field_value(html, "jeton"), "commune": "15014",
            "rayon": "30", **PATIENT, "patient.phone": "12"}  # fmt: skip
    r = await client.post("/regulation/reserver", data=data)
    assert r.status_code == 422
    assert "Choisissez un créneau dans la liste." in r.text
    assert 'id="patient-phone-error"' in r.text and "Numéro de téléphone français" in r.text


async def test_search_by_point_and_bad_point(client, territory):
    await publish_all_day(client, territory)
    await sign_in(client, territory.regulator)
    html = await search(client, "point=44.93,2.44&rayon=5&modalite=cabinet")
    assert slot_ids(html) and "distance à partir du point" in html
    assert not slot_ids(await search(client, "point=48.85,2.35&rayon=5"))  # Paris: too far
    html = await search(client, "point=quatre&rayon=5")
    assert 'id="point-error"' in html and not slot_ids(html)


async def test_practice_records_outcome_and_cancels(client, territory, session):
    await publish_all_day(client, territory)
    await sign_in(client, territory.regulator)
    html = await search(client)
    data = {"csrf": csrf_of(html), "jeton": field_value(html, "jeton"),
            "slot_id": slot_ids(html)[0], **PATIENT}  # fmt: skip
    booked = (await client.post("/regulation/reserver", data=data)).headers["location"]
    client.cookies.clear()
    await sign_in(client, territory.practice)
    listing = await client.get("/rendez-vous")
    assert "LEMOINE Jeanne" in listing.text
    page = await client.get(booked)
    assert "Patient venu" not in page.text  # not before the consultation has started
    r = await client.post(f"{booked}/annuler", data={"csrf": csrf_of(page.text), "reason": ""})
    assert r.status_code == 422 and 'id="reason-error"' in r.text
    r = await client.post(
        f"{booked}/annuler", data={"csrf": csrf_of(page.text), "reason": "Médecin absent"}
    )
    assert r.status_code == 303
    page = await client.get(booked)
    assert "Rendez-vous annulé." in page.text and "Médecin absent" in page.text


async def test_an_expired_session_sends_back_to_sign_in(client, territory, monkeypatch):
    import asyncio

    from app.config import get_settings

    await sign_in(client, territory.regulator)
    assert (await client.get("/regulation")).status_code == 200
    monkeypatch.setattr(get_settings(), "session_hours", 0)
    await asyncio.sleep(1.1)
    r = await client.get("/regulation")
    assert r.status_code == 303 and r.headers["location"] == "/connexion?next=/regulation"


async def test_every_page_answers_html_errors_never_json(client, territory):
    await sign_in(client, territory.practice)
    r = await client.get("/cabinet/medecins/not-a-uuid")
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    r = await client.get("/rendez-vous/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404 and "Page introuvable" in r.text
    assert r.headers["content-security-policy"].startswith("default-src 'self'")


async def test_lifting_an_absence_asks_first(client, territory, session):
    from app.scheduling.models import Unavailability

    await sign_in(client, territory.practice)
    base = f"/cabinet/medecins/{territory.practitioner_id}"
    csrf = csrf_of((await client.get(f"{base}/absence")).text)
    day = date.fromordinal(date.today().toordinal() + 5).isoformat()
    r = await client.post(
        f"{base}/absence",
        data={"csrf": csrf, "start": f"{day}T08:00", "end": f"{day}T18:00", "reason": "Congés"},
    )
    assert r.status_code == 303
    absence_url = r.headers["location"]
    absences = select(func.count()).where(
        Unavailability.practitioner_id == territory.practitioner_id
    )
    asked = await client.post(f"{absence_url}/lever", data={"csrf": csrf})
    assert asked.status_code == 200 and "Lever cette absence ?" in asked.text
    assert f'href="{absence_url}"' in asked.text  # "Annuler" goes back to the absence
    assert await session.scalar(absences) == 1
    lifted = await client.post(f"{absence_url}/lever", data={"csrf": csrf, "confirme": "oui"})
    assert lifted.status_code == 303
    assert await session.scalar(absences) == 0
