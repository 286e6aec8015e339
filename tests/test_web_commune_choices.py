"""A commune name typed in a form that several communes bear re-renders the form with a radio
button for each (its name, postal codes and département), to choose with the keyboard; the
practice form's postal code, town and commune hold together (issue 25)."""

from __future__ import annotations

import re
from html import unescape

from tests.test_slot_search import add_slot
from tests.test_web_dashboard import sign_in
from tests.test_web_pages import PATIENT, csrf_of, field_value, search

CHOICE = re.compile(r'<input type="radio" id="([^"]+)" name="([^"]+)" value="(\d[0-9AB]\d{3})"')


def radios(html: str, name: str) -> dict[str, str]:
    """INSEE code → the label of its radio button, for the radios of field `name`."""
    found = {}
    for fid, field_name, insee in CHOICE.findall(html):
        if field_name == name + ".choix.0":
            label = html.split(f'<label for="{fid}">')[1].split("</label>")[0]
            found[insee] = unescape(label)
    return found


async def test_a_booking_offers_the_communes_of_an_ambiguous_name(client, territory):
    slot = await add_slot(client, territory, territory.practitioner_id, 3)
    await sign_in(client, territory.regulator, "/regulation")
    html = await search(client, "commune=Aurillac&rayon=30")
    data = {"csrf": csrf_of(html), "jeton": field_value(html, "jeton"), "slot_id": slot,
            "commune": "Aurillac", "rayon": "30", **PATIENT,
            "patient.commune_insee": "Saint-Georges"}  # fmt: skip
    r = await client.post("/regulation/reserver", data=data)
    assert r.status_code == 422
    choices = radios(r.text, "patient.commune_insee")
    assert len(choices) > 5
    # Each names the commune, its postal code and its département; the Cantal's first.
    assert choices["15188"] == "Saint-Georges (15188) — code postal 15100, département 15"
    assert next(iter(choices)) == "15188", list(choices.items())[:3]
    assert "<legend>Précisez la commune « Saint-Georges »</legend>" in unescape(r.text)
    assert 'href="#patient-commune_insee"' in r.text  # the summary links to the field
    r = await client.post(
        "/regulation/reserver", data={**data, "patient.commune_insee.choix.0": "15188"}
    )
    assert r.status_code == 303, r.text
    page = unescape((await client.get(r.headers["location"])).text)
    assert "<dt>Commune</dt><dd>Saint-Georges (15188)</dd>" in page


async def test_the_unmet_request_form_offers_the_communes_of_an_ambiguous_name(
    client, territory, session
):
    from tests.test_web_unmet import unmet

    await sign_in(client, territory.regulator, "/regulation")
    html = (await client.get("/regulation/carence")).text
    data = {"csrf": csrf_of(html), "jeton": field_value(html, "jeton"), "commune": "15000",
            "motif": "no_slot", "delai": "48"}  # fmt: skip
    r = await client.post("/regulation/carence", data=data)
    assert r.status_code == 422
    choices = radios(r.text, "commune")
    assert choices == {
        "15014": "Aurillac (15014) — code postal 15000, département 15",
        "15267": "Ytrac (15267) — codes postaux 15000, 15130, département 15",
    }
    r = await client.post("/regulation/carence", data={**data, "commune.choix.0": "15267"})
    assert r.status_code == 303, r.text
    [declared] = await unmet(session, "declared")
    assert declared.commune_insee == "15267"


async def test_the_surnumeraire_form_offers_the_communes_of_an_ambiguous_name(client, territory):
    from tests.test_web_overbook import accept_overbooking

    await accept_overbooking(client, territory, cap=1)
    await sign_in(client, territory.regulator, "/regulation")
    html = (await client.get("/regulation/surnumeraire")).text
    data = {"csrf": csrf_of(html), "jeton": field_value(html, "jeton"), "modality": "cabinet",
            "practitioner_id": territory.practitioner_id, **PATIENT,
            "patient.commune_insee": "15000"}  # fmt: skip
    r = await client.post("/regulation/surnumeraire", data=data)
    assert r.status_code == 422
    assert set(radios(r.text, "patient.commune_insee")) == {"15014", "15267"}


async def _practice_form(client, territory, **fields):
    await sign_in(client, territory.coordinator, "/coordination")
    form = await client.get("/coordination/annuaire/cabinets/nouveau")
    data = {"csrf": csrf_of(form.text), "name": "Cabinet du Lac", "address": "1 rue du Lac",
            "lat": "45.03", "lon": "3.09", **fields}  # fmt: skip
    return await client.post("/coordination/annuaire/cabinets", data=data), data


async def _practices_named(client, territory, name):
    listed = await client.get("/v1/practices", headers=territory.coordinator)
    return [p for p in listed.json()["items"] if p["name"] == name]


async def test_the_practice_town_is_the_commune_when_left_blank(client, territory):
    r, _ = await _practice_form(
        client, territory, postal_code="15100", city="", commune_insee="saint flour"
    )
    assert r.status_code == 303, r.text
    [practice] = await _practices_named(client, territory, "Cabinet du Lac")
    assert (practice["postal_code"], practice["city"], practice["commune_insee"]) == (
        "15100", "Saint-Flour", "15187",
    )  # fmt: skip


async def test_a_town_typed_is_kept(client, territory):
    r, _ = await _practice_form(
        client, territory, postal_code="15100", city="St-Flour haute ville",
        commune_insee="15187",
    )  # fmt: skip
    assert r.status_code == 303, r.text
    [practice] = await _practices_named(client, territory, "Cabinet du Lac")
    assert practice["city"] == "St-Flour haute ville"


async def test_a_postal_code_of_another_commune_is_an_error_on_its_field(client, territory):
    r, _ = await _practice_form(
        client, territory, postal_code="15000", city="", commune_insee="Saint-Flour"
    )
    assert r.status_code == 422
    html = unescape(r.text)
    assert "Le code postal 15000 n'est pas celui de Saint-Flour (15100)." in html
    assert 'href="#postal_code"' in html and 'id="postal_code-error"' in html
    assert await _practices_named(client, territory, "Cabinet du Lac") == []


async def test_the_practice_form_offers_the_communes_of_an_ambiguous_name(client, territory):
    r, data = await _practice_form(client, territory, postal_code="15000", commune_insee="15000")
    assert r.status_code == 422
    assert set(radios(r.text, "commune_insee")) == {"15014", "15267"}
    r = await client.post(
        "/coordination/annuaire/cabinets", data={**data, "commune_insee.choix.0": "15267"}
    )
    assert r.status_code == 303, r.text
    [practice] = await _practices_named(client, territory, "Cabinet du Lac")
    assert (practice["commune_insee"], practice["city"]) == ("15267", "Ytrac")


async def test_the_directory_shows_practice_communes_by_name(client, territory):
    await sign_in(client, territory.coordinator, "/coordination")
    listing = unescape((await client.get("/coordination/annuaire")).text)
    assert "(commune Aurillac (15014))" in listing and "commune INSEE" not in listing
    form = (await client.get(f"/coordination/annuaire/cabinets/{territory.practice_id}")).text
    from tests.test_web_directory import field_value as input_value

    assert input_value(form, "commune_insee") == "Aurillac (15014)"
    # Saved again as shown, the commune is unchanged.
    data = {"csrf": csrf_of(form), "name": "Maison de santé d'Aurillac",
            "address": "2 place de l'Hôtel de Ville", "commune_insee": "Aurillac (15014)",
            "lat": "44.9264", "lon": "2.4396"}  # fmt: skip
    r = await client.post(f"/coordination/annuaire/cabinets/{territory.practice_id}", data=data)
    assert r.status_code == 303, r.text
    practice = await client.get(
        f"/v1/practices/{territory.practice_id}", headers=territory.coordinator
    )
    assert practice.json()["commune_insee"] == "15014"


async def test_a_cpts_booking_offers_the_communes_of_an_ambiguous_name(client, territory):
    slot = await add_slot(client, territory, territory.practitioner_id, 4, visibility="cpts")
    await sign_in(client, territory.practice, "/cpts")
    html = (await client.get("/cpts?rayon=30")).text
    data = {"csrf": csrf_of(html), "jeton": field_value(html, "jeton"), "slot_id": slot,
            "rayon": "30", **PATIENT, "patient.commune_insee": "15000"}  # fmt: skip
    r = await client.post("/cpts/reserver", data=data)
    assert r.status_code == 422
    assert set(radios(r.text, "patient.commune_insee")) == {"15014", "15267"}
    r = await client.post("/cpts/reserver", data={**data, "patient.commune_insee.choix.0": "15014"})
    assert r.status_code == 303, r.text
    page = unescape((await client.get(r.headers["location"])).text)
    assert "<dt>Commune</dt><dd>Aurillac (15014)</dd>" in page
