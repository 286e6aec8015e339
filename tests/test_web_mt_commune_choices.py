"""A commune typed in the médecin traitant forms (the public /medecin-traitant page, the
coordinator's /coordination/mt/nouvelle) or in the crisis declaration that several communes
match comes back (422) with a group of radio buttons per ambiguous value, named
`<field>.choix.<n>`; the one chosen is the commune registered, and is shown back as
"Name (INSEE)" when the form comes back for another error."""

from __future__ import annotations

import re
import uuid
from html import unescape

from sqlalchemy import select

from app.crisis.models import Crisis
from app.medecin_traitant.models import MtRequest
from tests.test_crisis_surge import MONDAY
from tests.test_mt_self_registration import form, requests_of
from tests.test_web_dashboard import sign_in
from tests.test_web_directory import field_value as input_value
from tests.test_web_pages import PATIENT, csrf_of, field_value

RADIO = re.compile(r'<input type="radio" id="([^"]+)" name="([^"]+)" value="([0-9AB]{5})"')


def radios(html: str, name: str) -> dict[str, str]:
    """INSEE code → the label of its radio button, for the radios named `name`, in order."""
    found = {}
    for fid, radio_name, insee in RADIO.findall(html):
        if radio_name == name:
            found[insee] = unescape(html.split(f'<label for="{fid}">')[1].split("</label>")[0])
    return found


def summary_count(html: str) -> int:
    match = re.search(r"Le formulaire contient (\d+) erreurs?", html)
    assert match, html
    return int(match.group(1))


async def test_an_ambiguous_name_asks_which_commune_with_radios(client, territory, session):
    r = await client.post(f"/medecin-traitant/{territory.id}", data=form(commune="Saint-Georges"))
    assert r.status_code == 422
    html = unescape(r.text)
    choices = radios(r.text, "commune.choix.0")
    assert len(choices) > 5
    assert next(iter(choices)) == "15188"  # the Cantal's first
    assert choices["15188"] == "Saint-Georges (15188) — code postal 15100, département 15"
    # A group named by its legend, described by the field's error; the error said once.
    assert '<fieldset class="choices" aria-describedby="commune-error">' in html
    assert "<legend>Précisez la commune « Saint-Georges »</legend>" in html
    assert summary_count(html) == 1
    assert html.count("Plusieurs communes correspondent") == 2  # the summary and the field
    assert "<script" not in html
    assert await requests_of(session, territory) == []


async def test_the_radio_chosen_registers_that_commune(client, territory, session):
    chosen = form(commune="Saint-Georges", **{"commune.choix.0": "47328"})
    r = await client.post(f"/medecin-traitant/{territory.id}", data=chosen)
    assert r.status_code == 200, r.text
    [request] = await requests_of(session, territory)
    assert request.patient_commune_insee == "47328"


async def test_a_choice_that_is_not_a_candidate_asks_again(client, territory, session):
    stale = form(commune="Saint-Georges", **{"commune.choix.0": "15014"})
    r = await client.post(f"/medecin-traitant/{territory.id}", data=stale)
    assert r.status_code == 422
    assert "15188" in radios(r.text, "commune.choix.0")
    assert await requests_of(session, territory) == []


async def test_a_postal_code_of_several_communes_offers_them(client, territory, session):
    r = await client.post(f"/medecin-traitant/{territory.id}", data=form(commune="15000"))
    assert r.status_code == 422
    assert radios(r.text, "commune.choix.0") == {
        "15014": "Aurillac (15014) — code postal 15000, département 15",
        "15267": "Ytrac (15267) — codes postaux 15000, 15130, département 15",
    }
    chosen = form(commune="15000", **{"commune.choix.0": "15267"})
    r = await client.post(f"/medecin-traitant/{territory.id}", data=chosen)
    assert r.status_code == 200, r.text
    [request] = await requests_of(session, territory)
    assert request.patient_commune_insee == "15267"


async def test_an_unknown_commune_is_still_an_error_without_radios(client, territory, session):
    r = await client.post(f"/medecin-traitant/{territory.id}", data=form(commune="Zzyzx"))
    assert r.status_code == 422
    html = unescape(r.text)
    assert "Commune : Commune introuvable" in html
    assert radios(r.text, "commune.choix.0") == {} and 'class="choices"' not in html
    assert await requests_of(session, territory) == []


async def test_the_chosen_commune_is_shown_back_for_another_error(client, territory, session):
    unconsented = form(commune="Saint-Georges", consentement="", **{"commune.choix.0": "15188"})
    r = await client.post(f"/medecin-traitant/{territory.id}", data=unconsented)
    assert r.status_code == 422
    assert input_value(r.text, "commune") == "Saint-Georges (15188)"
    assert 'class="choices"' not in r.text  # nothing left to choose
    assert "Votre accord est nécessaire" in unescape(r.text)
    # Sent again as shown, it is that commune.
    again = form(commune=input_value(r.text, "commune"))
    r = await client.post(f"/medecin-traitant/{territory.id}", data=again)
    assert r.status_code == 200, r.text
    [request] = await requests_of(session, territory)
    assert request.patient_commune_insee == "15188"


async def _coordinator_form(client, territory, **fields: str) -> dict[str, str]:
    await sign_in(client, territory.coordinator, "/coordination")
    page = (await client.get("/coordination/mt/nouvelle")).text
    return {"csrf": csrf_of(page), "jeton": field_value(page, "jeton"), "source": "hotline",
            **PATIENT, **fields}  # fmt: skip


async def test_the_coordinator_chooses_the_patient_and_preferred_communes(
    client, territory, session
):
    data = await _coordinator_form(
        client, territory, **{"patient.commune_insee": "15000",
                              "preferences.communes_insee": "Aurillac, Saint Georges, 15000"},
    )  # fmt: skip
    r = await client.post("/coordination/mt/nouvelle", data=data)
    assert r.status_code == 422
    html = unescape(r.text)
    assert set(radios(r.text, "patient.commune_insee.choix.0")) == {"15014", "15267"}
    # The second and the third value of the list each ask; Aurillac is Aurillac.
    assert radios(r.text, "preferences.communes_insee.choix.0") == {}
    assert "15188" in radios(r.text, "preferences.communes_insee.choix.1")
    assert set(radios(r.text, "preferences.communes_insee.choix.2")) == {"15014", "15267"}
    # One error per field: not the model's format error on each word beside the referential's.
    assert summary_count(html) == 2 and "Le format n'est pas valide" not in html
    assert "« Saint Georges » désigne plusieurs communes (choisissez dans la liste)" in html
    chosen = {**data, "patient.commune_insee.choix.0": "15267",
              "preferences.communes_insee.choix.1": "15188",
              "preferences.communes_insee.choix.2": "15267"}  # fmt: skip
    r = await client.post("/coordination/mt/nouvelle", data=chosen)
    assert r.status_code == 303, r.text
    request_id = uuid.UUID(r.headers["location"].rsplit("/", 1)[1])
    request = await session.get(MtRequest, request_id)
    assert request is not None
    assert request.patient_commune_insee == "15267"
    assert request.preferred_communes == ["15014", "15188", "15267"]


async def test_the_crisis_communes_ask_which_and_declare_the_chosen(
    client, territory, session, clock
):
    clock.set(MONDAY)
    await sign_in(client, territory.coordinator, "/coordination/crise")
    page = (await client.get("/coordination/crise")).text
    data = {"csrf": csrf_of(page), "kind": "heatwave", "title": "Canicule",
            "started_at": "2030-03-04T08:00", "expected_end_at": "2030-03-08T20:00",
            "communes": "Aurillac, Saint-Georges"}  # fmt: skip
    r = await client.post("/coordination/crise", data=data)
    assert r.status_code == 422
    html = unescape(r.text)
    assert next(iter(radios(r.text, "communes.choix.1"))) == "15188"
    assert '<fieldset class="choices" aria-describedby="communes-error">' in html
    assert summary_count(html) == 1
    # Another error: the commune chosen is shown back, to be sent again as shown.
    r = await client.post(
        "/coordination/crise", data={**data, "title": "", "communes.choix.1": "15188"}
    )
    assert r.status_code == 422
    assert input_value(r.text, "communes") == "Aurillac, Saint-Georges (15188)"
    assert 'class="choices"' not in r.text
    r = await client.post(
        "/coordination/crise", data={**data, "communes": "Aurillac, Saint-Georges (15188)"}
    )
    assert r.status_code == 303, r.text
    crisis = await session.scalar(
        select(Crisis).where(Crisis.territory_id == uuid.UUID(territory.id))
    )
    assert crisis is not None and crisis.communes == ["15014", "15188"]
