"""Communes as people type and read them on the pages: the slot searches take a name or a
postal code, an ambiguous value lists its communes, and the booking confirmation carries the
practice's postal code and town."""

from __future__ import annotations

from html import unescape
from urllib.parse import quote

from tests.test_slot_search import add_slot
from tests.test_web_dashboard import sign_in
from tests.test_web_pages import PATIENT, csrf_of, field_value, search, slot_ids


async def test_the_regulator_searches_by_commune_name(client, territory):
    slot = await add_slot(client, territory, territory.practitioner_id, 3)
    await sign_in(client, territory.regulator, "/regulation")
    html = unescape(await search(client, "commune=aurillac&rayon=30"))
    assert slot_ids(html) == [slot]
    assert "distance à partir du centre de Aurillac" in html
    assert 'value="Aurillac (15000)"' in html  # the field shows the commune it understood


async def test_the_regulator_searches_by_postal_code_of_several_communes(client, territory):
    slot = await add_slot(client, territory, territory.practitioner_id, 3)
    await sign_in(client, territory.regulator, "/regulation")
    html = unescape(await search(client, "commune=15000&rayon=30"))
    assert slot_ids(html) == [slot]
    assert "distance à partir du code postal 15000 (Aurillac, Ytrac)" in html


async def test_a_name_of_several_communes_lists_them_to_choose(client, territory):
    slot = await add_slot(client, territory, territory.practitioner_id, 3)
    await sign_in(client, territory.regulator, "/regulation")
    r = await client.get("/regulation?commune=Saint-Georges&rayon=30")
    assert r.status_code == 200
    html = unescape(r.text)
    assert slot_ids(html) == []
    assert "Plusieurs communes correspondent : choisissez-la dans la liste" in html
    assert 'href="#commune"' in html  # the error summary points at the field
    choices = html.split('id="choix-commune-titre"')[1].split("</form>")[0]
    # The one of the territory's département first (Cantal: 15100 Saint-Georges).
    first = choices.split('<div class="check">')[1]
    assert 'name="commune" value="15188"' in first and "15100, département 15" in first
    assert choices.count('type="radio"') > 5
    chosen = unescape(await search(client, "commune=15188&rayon=commune"))
    assert 'value="Saint-Georges (15100)"' in chosen and slot_ids(chosen) == []
    assert "0 créneau disponible" in chosen  # no practice of the directory there
    assert slot_ids(await search(client, "commune=Aurillac&rayon=30")) == [slot]


async def test_a_commune_only_search_needs_one_commune(client, territory):
    await add_slot(client, territory, territory.practitioner_id, 3)
    await sign_in(client, territory.regulator, "/regulation")
    html = unescape(await search(client, "commune=15000&rayon=commune"))
    assert "Plusieurs communes correspondent" in html and 'name="commune" value="15267"' in html
    html = unescape(await search(client, f"commune={quote('Aurillac (15000)')}&rayon=commune"))
    assert len(slot_ids(html)) == 1


async def test_an_unknown_commune_is_said_on_the_field(client, territory):
    await sign_in(client, territory.regulator, "/regulation")
    html = unescape(await search(client, "commune=Zzyzx&rayon=30"))
    assert "Commune inconnue : tapez son nom, son code postal ou son code INSEE" in html
    assert 'id="commune-error"' in html


async def test_a_commune_without_any_practice_nearby_asks_for_a_point(client, territory):
    await sign_in(client, territory.regulator, "/regulation")
    html = unescape(await search(client, "commune=Brest&rayon=30"))
    assert "sa position n'est pas connue" in html


async def test_the_cpts_searches_by_commune_name(client, territory):
    slot = await add_slot(client, territory, territory.practitioner_id, 3, visibility="cpts")
    await sign_in(client, territory.coordinator, "/cpts")
    r = await client.get("/cpts?commune=AURILLAC&rayon=10")
    assert r.status_code == 200
    html = unescape(r.text)
    assert slot_ids(html) == [slot] and "distance à partir du centre de Aurillac" in html


async def test_the_confirmation_shows_the_practice_postal_code_and_town(client, territory, admin):
    r = await client.patch(
        f"/v1/practices/{territory.practice_id}",
        json={"postal_code": "15000", "city": "Aurillac"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    slot = await add_slot(client, territory, territory.practitioner_id, 3)
    await sign_in(client, territory.regulator, "/regulation")
    html = await search(client, "commune=Aurillac&rayon=30")
    data = {"csrf": csrf_of(html), "jeton": field_value(html, "jeton"), "slot_id": slot,
            "commune": "Aurillac", "rayon": "30", **PATIENT}  # fmt: skip
    booked = await client.post("/regulation/reserver", data=data)
    assert booked.status_code == 303, booked.text
    page = unescape((await client.get(booked.headers["location"])).text)
    assert "Maison de santé d'Aurillac, 2 place de l'Hôtel de Ville, 15000 Aurillac" in page
    booking_id = booked.headers["location"].rsplit("/", 1)[-1]
    api = await client.get(f"/v1/bookings/{booking_id}", headers=territory.regulator)
    practice = api.json()["practice"]
    assert (practice["postal_code"], practice["city"]) == ("15000", "Aurillac")


async def test_the_api_booking_carries_the_practice_postal_code_and_town(client, territory, admin):
    await client.patch(
        f"/v1/practices/{territory.practice_id}",
        json={"postal_code": "15000", "city": "Aurillac"},
        headers=admin,
    )
    slot = await add_slot(client, territory, territory.practitioner_id, 3)
    r = await client.post(
        "/v1/bookings",
        json={"slot_id": slot, "hold": True},
        headers={**territory.regulator, "Idempotency-Key": "5b0d1f57-1c1e-4b0e-9f4e-2b9a7c3d1e20"},
    )
    assert r.status_code == 201, r.text
    practice = r.json()["practice"]
    assert practice["address"] == "2 place de l'Hôtel de Ville"
    assert (practice["postal_code"], practice["city"]) == ("15000", "Aurillac")


async def test_the_coordinator_registers_a_patient_by_commune_names(client, territory, session):
    await sign_in(client, territory.coordinator, "/coordination")
    form = await client.get("/coordination/mt/nouvelle")
    data = {"csrf": csrf_of(form.text), "jeton": field_value(form.text, "jeton"),
            "source": "hotline", **PATIENT, "patient.commune_insee": "Arpajon sur Cere",
            "preferences.communes_insee": "Aurillac, St-Flour"}  # fmt: skip
    r = await client.post("/coordination/mt/nouvelle", data=data)
    assert r.status_code == 303, r.text
    page = unescape((await client.get(r.headers["location"])).text)
    assert "<dt>Commune</dt><dd>Arpajon-sur-Cère (15012)</dd>" in page
    assert "Aurillac (15014), Saint-Flour (15187)" in page


async def test_the_coordinator_chooses_among_the_communes_of_a_postal_code(client, territory):
    await sign_in(client, territory.coordinator, "/coordination")
    form = await client.get("/coordination/mt/nouvelle")
    data = {"csrf": csrf_of(form.text), "jeton": field_value(form.text, "jeton"),
            "source": "hotline", **PATIENT, "patient.commune_insee": "15000",
            "preferences.communes_insee": "Saint-Georges, Zzyzx"}  # fmt: skip
    r = await client.post("/coordination/mt/nouvelle", data=data)
    assert r.status_code == 422
    html = unescape(r.text)
    assert 'name="patient.commune_insee.choix.0" value="15267"' in html  # Ytrac, to choose
    assert "« Saint-Georges » désigne plusieurs communes (choisissez dans la liste)" in html
    assert 'name="preferences.communes_insee.choix.0" value="15188"' in html
    assert "« Zzyzx » est introuvable." in html
    chosen = {**data, "patient.commune_insee.choix.0": "15267", "preferences.communes_insee": ""}
    r = await client.post("/coordination/mt/nouvelle", data=chosen)
    assert r.status_code == 303, r.text
    assert "Ytrac (15267)" in unescape((await client.get(r.headers["location"])).text)


async def test_the_booking_form_takes_the_patient_commune_by_name(client, territory):
    slot = await add_slot(client, territory, territory.practitioner_id, 3)
    await sign_in(client, territory.regulator, "/regulation")
    html = await search(client, "commune=Aurillac&rayon=30")
    data = {"csrf": csrf_of(html), "jeton": field_value(html, "jeton"), "slot_id": slot,
            "commune": "Aurillac", "rayon": "30", **PATIENT,
            "patient.commune_insee": "15000"}  # fmt: skip
    r = await client.post("/regulation/reserver", data=data)
    assert r.status_code == 422
    html = unescape(r.text)
    assert "Plusieurs communes correspondent : choisissez la bonne dans la liste." in html
    assert 'name="patient.commune_insee.choix.0" value="15267"' in html  # Ytrac, to choose
    r = await client.post("/regulation/reserver", data={**data, "patient.commune_insee": "Ytrac"})
    assert r.status_code == 303, r.text
    page = unescape((await client.get(r.headers["location"])).text)
    assert "<dt>Commune</dt><dd>Ytrac (15267)</dd>" in page


async def test_the_practice_form_takes_a_commune_name(client, territory):
    await sign_in(client, territory.coordinator, "/coordination")
    form = await client.get("/coordination/annuaire/cabinets/nouveau")
    data = {"csrf": csrf_of(form.text), "name": "Cabinet du Lac", "address": "1 rue du Lac",
            "commune_insee": "saint flour", "lat": "45.03", "lon": "3.09"}  # fmt: skip
    r = await client.post("/coordination/annuaire/cabinets", data=data)
    assert r.status_code == 303, r.text
    practices = await client.get("/v1/practices?commune_insee=15187", headers=territory.coordinator)
    assert [p["name"] for p in practices.json()["items"]] == ["Cabinet du Lac"]


async def test_an_unmet_request_after_a_search_by_name_keeps_its_commune(
    client, territory, session
):
    from tests.test_web_unmet import form_data, unmet

    await sign_in(client, territory.regulator, "/regulation")
    html = await search(client, "commune=Aurillac&rayon=30")  # nothing published: empty
    assert '<option value="15014" selected>Aurillac</option>' in html
    r = await client.post("/regulation/carence", data=form_data(html))
    assert r.status_code == 303, r.text
    [declared] = await unmet(session, "declared")
    assert declared.commune_insee == "15014"
    [empty] = await unmet(session, "empty_search")
    assert empty.commune_insee == "15014"


async def test_the_unmet_page_takes_a_commune_name(client, territory, session):
    from tests.test_web_unmet import unmet

    await sign_in(client, territory.regulator, "/regulation")
    html = (await client.get("/regulation/carence")).text
    data = {"csrf": csrf_of(html), "jeton": field_value(html, "jeton"), "commune": "aurillac",
            "motif": "no_slot", "delai": "48"}  # fmt: skip
    r = await client.post("/regulation/carence", data=data)
    assert r.status_code == 303, r.text
    [declared] = await unmet(session, "declared")
    assert declared.commune_insee == "15014"


async def test_an_empty_search_by_postal_code_counts_at_its_centre(client, territory, session):
    from tests.test_web_unmet import unmet

    await sign_in(client, territory.regulator, "/regulation")
    html = unescape(await search(client, "commune=15000&rayon=30"))  # nothing published
    assert "0 créneau disponible" in html
    [empty] = await unmet(session, "empty_search")
    assert empty.commune_insee == "15014"  # the commune of the nearest practice
