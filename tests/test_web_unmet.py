"""Unmet SNP demand on the regulator's search page over HTTP: the one-keystroke form under a
search that found nothing (or nothing suitable), pre-filled from the search; empty searches
counted once per regulator, commune and half hour, apart from declared requests."""

from __future__ import annotations

import re
from html import unescape

from sqlalchemy import func, select

from app.unmet_demand.models import UnmetRequest
from tests.test_web_dashboard import sign_in
from tests.test_web_pages import csrf_of, field_value, publish_all_day, search


def unmet_form(html: str) -> str:
    start = html.index('action="/regulation/carence"')
    return html[start : html.index("</form>", start)]


def form_data(html: str, **over: str) -> dict[str, str]:
    form = unmet_form(html)
    data = {"csrf": csrf_of(html), "jeton": field_value(form, "jeton")}
    for name in ("rayon", "modalite", "point"):
        if f'name="{name}" value=' in form:
            data[name] = field_value(form, name)
    selected = re.search(r'name="commune".*?<option value="([^"]+)" selected', form, re.S)
    if selected:
        data["commune"] = selected.group(1)
    motif = re.search(r'id="motif".*?<option value="([^"]+)" selected', form, re.S)
    assert motif
    data["motif"] = motif.group(1)
    delai = re.search(r'name="delai"[^>]*value="([^"]*)"', form)
    assert delai
    data["delai"] = delai.group(1)
    return {**data, **over}


async def unmet(session, kind: str) -> list[UnmetRequest]:
    rows = await session.scalars(select(UnmetRequest).where(UnmetRequest.kind == kind))
    return list(rows)


async def test_an_empty_search_offers_the_unmet_form_focused_and_prefilled(client, territory):
    await sign_in(client, territory.regulator)
    html = await search(client, "commune=15014&rayon=30&modalite=visite")
    assert "Aucun créneau libre" in html
    form = unmet_form(html)
    assert "Aucun créneau : enregistrer la demande non satisfaite" in unescape(form)
    # One keystroke: the button has the focus (Enter), and Alt+N reaches it from anywhere.
    assert re.search(r'<button type="submit" accesskey="n" id="resultats"[^>]* autofocus>', form)
    data = form_data(html)
    assert (data["commune"], data["modalite"], data["motif"], data["delai"]) == (
        "15014", "visite", "no_slot", "48",
    )  # fmt: skip


async def test_the_regulator_records_an_unmet_request_from_an_empty_search(
    client, territory, session
):
    await sign_in(client, territory.regulator)
    html = await search(client, "commune=15014&rayon=30&modalite=visite")
    data = form_data(html, dossier="SAS15-9")
    r = await client.post("/regulation/carence", data=data)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/regulation?commune=15014&point=&rayon=30&modalite=visite"
    page = await client.get(r.headers["location"])
    assert "Demande non satisfaite enregistrée" in unescape(page.text)
    again = await client.post("/regulation/carence", data=data)  # a double submission
    assert again.status_code == 303
    [declared] = await unmet(session, "declared")
    assert (declared.commune_insee, declared.modality, declared.reason) == (
        "15014", "visite", "no_slot",
    )  # fmt: skip
    assert declared.wanted_within_hours == 48 and declared.sas_case_ref == "SAS15-9"
    assert str(declared.territory_id) == territory.id


async def test_a_search_with_slots_offers_no_suitable_slot_without_the_focus(client, territory):
    await publish_all_day(client, territory)
    await sign_in(client, territory.regulator)
    html = await search(client)
    form = unmet_form(html)
    assert "Rien ne convient" in form and "autofocus" not in form
    assert form_data(html)["motif"] == "no_suitable_slot"


async def test_empty_searches_count_once_per_regulator_commune_and_half_hour(
    client, territory, session
):
    await sign_in(client, territory.regulator)
    for _ in range(3):
        await search(client, "commune=15014&rayon=30")
    await search(client, "commune=15014&rayon=30&modalite=visite")
    [counted] = await unmet(session, "empty_search")
    assert counted.commune_insee == "15014" and counted.reason == "no_slot"
    assert counted.half_hour is not None and counted.half_hour.minute in (0, 30)
    assert await unmet(session, "declared") == []  # kept apart from the declared ones


async def test_a_search_with_slots_is_not_counted(client, territory, session):
    await publish_all_day(client, territory)
    await sign_in(client, territory.regulator)
    await search(client)
    assert await session.scalar(select(func.count()).select_from(UnmetRequest)) == 0


async def test_unmet_form_errors_are_french_and_record_nothing(client, territory, session):
    await sign_in(client, territory.regulator)
    html = await search(client, "commune=15014&rayon=30")
    r = await client.post("/regulation/carence", data=form_data(html, delai="0", motif="x"))
    assert r.status_code == 422
    text = unescape(r.text)
    assert 'id="delai-error"' in r.text and 'id="motif-error"' in r.text
    assert "Choisissez" in text or "valeur" in text.lower()
    r = await client.post("/regulation/carence", data=form_data(html, commune=""))
    assert r.status_code == 422 and "Indiquez la commune" in unescape(r.text)
    assert await unmet(session, "declared") == []


async def test_only_regulators_use_the_unmet_form(client, territory):
    await sign_in(client, territory.coordinator)
    r = await client.get("/regulation/carence")
    assert r.status_code == 403
