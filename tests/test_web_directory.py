"""The coordinator's directory forms over HTTP: create and edit a practice, edit a GP,
through the API's directory services, with French errors next to each field."""

from __future__ import annotations

import re
import uuid
from html import unescape

from sqlalchemy import func, select

from app.activity.models import ActivityEvent
from app.directory.models import Practice, Practitioner
from tests.test_web_dashboard import sign_in
from tests.test_web_pages import csrf_of


def field_value(html: str, name: str) -> str:
    """The value of a text-like input as the page fills it."""
    match = re.search(rf'name="{re.escape(name)}" type="[a-z]+" value="([^"]*)"', html)
    assert match, f"no field {name}"
    return unescape(match.group(1))


NEW_PRACTICE = {
    "name": "Cabinet du Lioran",
    "address": "2 place de la Gare",
    "postal_code": "15300",
    "city": "Laveissière",
    "commune_insee": "15102",
    "lat": "45,0849",  # a decimal comma, as typed in France
    "lon": "2.7381",
    "phone": "04 71 49 50 00",
    "finess": "150000123",
    "siret": "12345678901234",
}


async def test_coordinator_creates_a_practice(client, territory, session):
    await sign_in(client, territory.coordinator)
    directory = await client.get("/coordination/annuaire")
    assert 'href="/coordination/annuaire/cabinets/nouveau"' in directory.text
    form = await client.get("/coordination/annuaire/cabinets/nouveau")
    assert form.status_code == 200 and "Ajouter un cabinet" in form.text
    data = {"csrf": csrf_of(form.text), **NEW_PRACTICE}
    bad = {**data, "name": "", "commune_insee": "1510", "lat": "91", "siret": "123",
           "phone": "12"}  # fmt: skip
    r = await client.post("/coordination/annuaire/cabinets", data=bad)
    assert r.status_code == 422
    text = unescape(r.text)
    assert 'id="name-error"' in r.text and "Ce champ est obligatoire." in text
    assert "Commune introuvable : indiquez son nom ou son code postal" in text
    assert "Latitude invalide : un nombre entre -90 et 90, ex. 44.9264." in text
    assert "Le SIRET compte 14 chiffres." in text
    assert "Numéro de téléphone français invalide." in text
    assert field_value(r.text, "address") == "2 place de la Gare"  # kept for correction
    assert not await session.scalar(select(Practice).where(Practice.city == "Laveissière"))
    r = await client.post("/coordination/annuaire/cabinets", data=data)
    assert r.status_code == 303, r.text
    practice = await session.scalar(select(Practice).where(Practice.name == "Cabinet du Lioran"))
    assert str(practice.territory_id) == territory.id
    assert (practice.lat, practice.lon, practice.siret) == (45.0849, 2.7381, "12345678901234")
    page = unescape((await client.get(r.headers["location"])).text)
    assert "Cabinet « Cabinet du Lioran » ajouté." in page


async def test_coordinator_edits_a_practice_and_clears_an_optional_field(
    client, territory, session
):
    await sign_in(client, territory.coordinator)
    url = f"/coordination/annuaire/cabinets/{territory.practice_id}"
    form = await client.get(url)
    assert form.status_code == 200
    values = {name: field_value(form.text, name) for name in NEW_PRACTICE}
    assert values["commune_insee"] == "Aurillac (15014)"  # the commune by its name
    data = {**values, "csrf": csrf_of(form.text), "phone": "", "finess": "15000012",
            "address": "10 rue Victor Hugo"}  # fmt: skip
    r = await client.post(url, data=data)
    assert r.status_code == 422 and "Le FINESS compte 9 caractères." in unescape(r.text)
    r = await client.post(url, data={**data, "finess": "150000999", "address": ""})
    assert r.status_code == 422 and 'id="address-error"' in r.text
    r = await client.post(url, data={**data, "finess": "150000999"})
    assert r.status_code == 303
    practice = await session.get(Practice, uuid.UUID(territory.practice_id))
    await session.refresh(practice)
    assert (practice.address, practice.finess, practice.phone) == (
        "10 rue Victor Hugo",
        "150000999",
        None,
    )


async def test_coordinator_edits_a_gp(client, territory, session):
    await sign_in(client, territory.coordinator)
    url = f"/coordination/annuaire/medecins/{territory.practitioner_id}"
    directory = await client.get("/coordination/annuaire")
    assert f'href="{url}"' in directory.text
    form = await client.get(url)
    assert form.status_code == 200 and "Dr Claire Martin" in form.text
    data = {"csrf": csrf_of(form.text), "practice_id": territory.practice_id,
            "rpps": field_value(form.text, "rpps"), "family_name": "Martin-Roux",
            "given_name": "Claire", "gender": "female", "specialty": "",
            "accepts_overbooking": "true", "overbooking_daily_cap": "60",
            "mt_capacity": "-1"}  # fmt: skip
    r = await client.post(url, data=data)
    assert r.status_code == 422
    text = unescape(r.text)
    assert 'id="overbooking_daily_cap-error"' in r.text and "Valeur trop grande." in text
    assert 'id="mt_capacity-error"' in r.text and "Valeur trop petite." in text
    assert 'name="accepts_overbooking" value="true" checked' in r.text  # kept
    events = (
        select(func.count())
        .select_from(ActivityEvent)
        .where(ActivityEvent.type == "mt.capacity_set")
    )
    before = await session.scalar(events)
    gp = await session.get(Practitioner, uuid.UUID(territory.practitioner_id))
    await session.refresh(gp)
    r = await client.post(
        url, data={**data, "overbooking_daily_cap": "2", "mt_capacity": str(gp.mt_capacity)}
    )
    assert r.status_code == 303
    assert "Dr Claire Martin-Roux enregistré(e)." in unescape(
        (await client.get(r.headers["location"])).text
    )
    await session.refresh(gp)
    assert (gp.family_name, gp.accepts_overbooking, gp.overbooking_daily_cap) == (
        "Martin-Roux",
        True,
        2,
    )
    assert await session.scalar(events) == before  # capacity unchanged: no capacity event
    r = await client.post(url, data={**data, "overbooking_daily_cap": "2", "mt_capacity": "7",
                                     "rpps": "1"})  # fmt: skip
    assert r.status_code == 422 and "Le RPPS compte 11 chiffres." in r.text
    r = await client.post(url, data={**data, "overbooking_daily_cap": "0", "mt_capacity": "7"})
    assert r.status_code == 303
    await session.refresh(gp)
    assert gp.mt_capacity == 7 and gp.overbooking_daily_cap == 0
    assert await session.scalar(events) == before + 1


async def test_duplicate_rpps_and_foreign_gp(client, territory, other_territory, session):
    await sign_in(client, territory.coordinator)
    directory = await client.get("/coordination/annuaire")
    r = await client.post(
        "/coordination/annuaire/medecins",
        data={"csrf": csrf_of(directory.text), "practitioner.practice_id": territory.practice_id,
              "practitioner.rpps": "12345678901", "practitioner.family_name": "Roux",
              "practitioner.given_name": "Paul"},
    )  # fmt: skip
    assert r.status_code == 303
    url = f"/coordination/annuaire/medecins/{territory.practitioner_id}"
    form = await client.get(url)
    data = {"csrf": csrf_of(form.text), "practice_id": territory.practice_id,
            "rpps": "12345678901", "family_name": "Martin", "given_name": "Claire",
            "overbooking_daily_cap": "0", "mt_capacity": "0"}  # fmt: skip
    r = await client.post(url, data=data)
    assert r.status_code == 422
    assert "Ce RPPS est déjà dans l&#39;annuaire du territoire." in r.text
    assert "Dr Claire Martin" in unescape(r.text)  # the GP read again after the rollback
    assert (
        await client.get(f"/coordination/annuaire/medecins/{other_territory.practitioner_id}")
    ).status_code == 404
    assert (
        await client.get(f"/coordination/annuaire/cabinets/{other_territory.practice_id}")
    ).status_code == 404
    client.cookies.clear()
    await sign_in(client, territory.practice)
    assert (await client.get("/coordination/annuaire/cabinets/nouveau")).status_code == 403
    assert (await client.get(url)).status_code == 403


async def test_directory_lists_practices_and_gps_alphabetically(client, territory, admin):
    from tests.conftest import practice_body, practitioner_body

    r = await client.post(
        "/v1/practices", json=practice_body(territory.id, name="Cabinet de l'Église"), headers=admin
    )
    assert r.status_code == 201, r.text
    for family in ("Zola", "Émery", "Abel"):
        body = practitioner_body(territory.practice_id, family_name=family)
        assert (await client.post("/v1/practitioners", json=body, headers=admin)).status_code == 201
    await sign_in(client, territory.coordinator)
    text = unescape((await client.get("/coordination/annuaire")).text)
    # "Cabinet de l'Église" before "Maison de santé d'Aurillac"; accents sort as their letter.
    assert text.index("Cabinet de l'Église") < text.index("Maison de santé d'Aurillac")
    positions = [text.index(f"Dr Claire {name}") for name in ("Abel", "Émery", "Martin", "Zola")]
    assert positions == sorted(positions)
