"""The calls-for-slots pages: the coordinator's (/coordination/appels-creneaux: the territory's
floor, the groups of communes typed by name, their deletion after a confirmation, the GPs who
accept calls, the last 7 days' calls) and the practice's per-GP form
(/cabinet/medecins/{id}/appels: accept at an address, or stop)."""

from __future__ import annotations

from html import unescape

from sqlalchemy import select

from app.unmet_demand.models import SlotCallAreaFloor, SlotCallFloor, SlotCallOptIn
from tests.test_slot_calls import opt_in, run
from tests.test_web_crisis import csrf
from tests.test_web_dashboard import sign_in
from tests.test_web_directory import field_value as input_value
from tests.test_web_mt_commune_choices import radios

PAGE = "/coordination/appels-creneaux"


async def coordinator_form(client, t) -> str:
    await sign_in(client, t.coordinator, PAGE)
    r = await client.get(PAGE)
    assert r.status_code == 200, r.text
    return csrf(r.text)


async def test_the_coordinator_sets_the_territory_floor(client, territory, session):
    token = await coordinator_form(client, territory)
    r = await client.post(f"{PAGE}/seuil", data={"csrf": token, "floor": "4", "window_hours": "24"})
    assert r.status_code == 303, r.text
    row = await session.get(SlotCallFloor, territory.id)
    assert row is not None and (row.floor, row.window_hours) == (4, 24)
    page = (await client.get(PAGE)).text
    assert "Seuil actuel : moins de 4 créneau(x) SAS libre(s) dans les 24 heures" in page


async def test_a_bad_territory_floor_is_shown_next_to_its_field(client, territory, session):
    token = await coordinator_form(client, territory)
    r = await client.post(f"{PAGE}/seuil", data={"csrf": token, "floor": "-3", "window_hours": ""})
    assert r.status_code == 422
    assert 'id="floor-error"' in r.text and "Valeur trop petite." in r.text
    assert await session.get(SlotCallFloor, territory.id) is None


async def test_a_group_is_added_by_commune_names_and_listed(client, territory):
    token = await coordinator_form(client, territory)
    form = {"csrf": token, "group.name": "Hautes Terres",
            "group.communes": "Saint-Flour, Arpajon-sur-Cère",
            "group.floor": "2", "group.window_hours": "48"}  # fmt: skip
    r = await client.post(f"{PAGE}/groupes", data=form)
    assert r.status_code == 303, r.text
    page = (await client.get(PAGE)).text
    assert "Saint-Flour (15187), Arpajon-sur-Cère (15012)" in page
    assert "Modifier Hautes Terres" in page and "Supprimer Hautes Terres" in page
    r = await client.get(f"{PAGE}?groupe=Hautes%20Terres")
    assert "Modifier le groupe « Hautes Terres »" in r.text
    assert 'value="Saint-Flour (15187), Arpajon-sur-Cère (15012)"' in r.text


async def test_a_commune_of_another_group_is_refused_in_french(client, territory):
    token = await coordinator_form(client, territory)
    base = {"csrf": token, "group.floor": "1", "group.window_hours": "48"}
    r = await client.post(f"{PAGE}/groupes", data={**base, "group.name": "Est",
                                                   "group.communes": "Saint-Flour"})  # fmt: skip
    assert r.status_code == 303
    r = await client.post(f"{PAGE}/groupes", data={**base, "group.name": "Ouest",
                                                   "group.communes": "15187"})  # fmt: skip
    assert r.status_code == 422
    assert "Saint-Flour (15187) est déjà dans le groupe « Est »" in r.text
    assert 'id="group-communes-error"' in r.text


async def test_unknown_communes_and_names_are_shown_next_to_their_fields(client, territory):
    token = await coordinator_form(client, territory)
    form = {"csrf": token, "group.name": "a/b", "group.communes": "Nulle-Part-sur-Mer",
            "group.floor": "", "group.window_hours": "48"}  # fmt: skip
    r = await client.post(f"{PAGE}/groupes", data=form)
    assert r.status_code == 422
    assert "« Nulle-Part-sur-Mer » est introuvable" in r.text
    assert "sans barre oblique" in r.text
    assert 'id="group-floor-error"' in r.text


async def test_a_group_is_deleted_after_a_confirmation(client, territory, session):
    token = await coordinator_form(client, territory)
    await client.post(f"{PAGE}/groupes", data={"csrf": token, "group.name": "Nord",
                      "group.communes": "Mauriac (15200)", "group.floor": "1",
                      "group.window_hours": "48"})  # fmt: skip
    r = await client.post(f"{PAGE}/groupes/Nord/supprimer", data={"csrf": token})
    assert r.status_code == 200 and "Supprimer le groupe « Nord » ?" in r.text
    assert await session.scalar(
        select(SlotCallAreaFloor).where(SlotCallAreaFloor.territory_id == territory.id)
    )
    r = await client.post(f"{PAGE}/groupes/Nord/supprimer", data={"csrf": token, "confirme": "oui"})
    assert r.status_code == 303
    assert not await session.scalar(
        select(SlotCallAreaFloor).where(SlotCallAreaFloor.territory_id == territory.id)
    )


async def test_the_page_lists_volunteers_and_the_weeks_calls(client, territory):
    await opt_in(client, territory, territory.practitioner_id)
    r = await client.put(
        "/v1/slot-calls/area-floors/Centre",
        json={"communes": ["15014"], "floor": 1},
        headers=territory.coordinator,
    )
    assert r.status_code == 200, r.text
    assert await run(client, territory) == 1
    await coordinator_form(client, territory)
    page = (await client.get(PAGE)).text
    assert "claire.martin@msp-aurillac.fr" in page
    assert "groupe « Centre »" in page and "Dr Claire Martin" in page


async def test_the_practice_accepts_then_stops_calls_for_its_gp(client, territory, session):
    path = f"/cabinet/medecins/{territory.practitioner_id}/appels"
    await sign_in(client, territory.practice, path)
    gp_page = (await client.get(f"/cabinet/medecins/{territory.practitioner_id}")).text
    assert f'href="{path}"' in gp_page
    r = await client.get(path)
    assert r.status_code == 200 and "ne reçoit pas d'appels" in r.text
    token = csrf(r.text)
    r = await client.post(path, data={"csrf": token, "email": "pas-une-adresse"})
    assert r.status_code == 422 and "Adresse e-mail invalide" in r.text
    r = await client.post(path, data={"csrf": token, "email": "dr.martin@example.fr"})
    assert r.status_code == 303
    row = await session.get(SlotCallOptIn, territory.practitioner_id)
    assert row is not None and row.email == "dr.martin@example.fr"
    r = await client.post(f"{path}/arret", data={"csrf": token})
    assert r.status_code == 303
    session.expire_all()
    assert await session.get(SlotCallOptIn, territory.practitioner_id) is None


async def test_another_practices_gp_is_not_found(client, territory, other_territory):
    await sign_in(client, territory.practice, "/cabinet")
    r = await client.get(f"/cabinet/medecins/{other_territory.practitioner_id}/appels")
    assert r.status_code == 404


async def test_an_ambiguous_commune_of_a_group_asks_which_with_radios(client, territory, session):
    token = await coordinator_form(client, territory)
    form = {"csrf": token, "group.name": "Sud", "group.communes": "Saint-Flour, Saint-Georges",
            "group.floor": "1", "group.window_hours": "48"}  # fmt: skip
    r = await client.post(f"{PAGE}/groupes", data=form)
    assert r.status_code == 422
    choices = radios(r.text, "group.communes.choix.1")
    assert "15188" in choices and len(choices) > 5
    assert '<fieldset class="choices" aria-describedby="group-communes-error">' in unescape(r.text)
    assert not await session.scalar(
        select(SlotCallAreaFloor).where(SlotCallAreaFloor.territory_id == territory.id)
    )
    r = await client.post(f"{PAGE}/groupes", data={**form, "group.communes.choix.1": "15188"})
    assert r.status_code == 303, r.text
    page = (await client.get(PAGE)).text
    assert "Saint-Flour (15187), Saint-Georges (15188)" in page


async def test_a_commune_chosen_in_a_group_is_shown_back_as_chosen(client, territory):
    token = await coordinator_form(client, territory)
    form = {"csrf": token, "group.name": "a/b", "group.communes": "Saint-Georges",
            "group.communes.choix.0": "15188", "group.floor": "1",
            "group.window_hours": "48"}  # fmt: skip
    r = await client.post(f"{PAGE}/groupes", data=form)
    assert r.status_code == 422 and "sans barre oblique" in r.text
    assert input_value(r.text, "group.communes") == "Saint-Georges (15188)"
    assert "group.communes.choix" not in r.text
