"""The crisis plan's pages over HTTP: the plan ready to print, its versions and JSON, the
reminder on the coordinator's pages, the edit form's round trip (lines added, errors named
by field and linked to their input)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape
from urllib.parse import urlencode

import httpx

from tests.test_crisis_plan import plan_body
from tests.test_web_dashboard import sign_in
from tests.test_web_pages import field_value

PLAN = "/coordination/crise/plan"
EDIT = f"{PLAN}/modifier"


def form_of(html: str) -> list[tuple[str, str]]:
    """The hidden and filled fields of the edit form, as the browser would send them."""
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
    return [(n, unescape(v)) for n, v in fields]


def with_fields(html: str, **typed: str | list[str]) -> list[tuple[str, str]]:
    pairs = form_of(html)
    for name, value in typed.items():
        name = name.replace("__", ".")
        for v in value if isinstance(value, list) else [value]:
            pairs.append((name, v))
    return pairs


async def post(client: httpx.AsyncClient, pairs: list[tuple[str, str]]) -> httpx.Response:
    return await client.post(
        EDIT,
        content=urlencode(pairs),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


async def test_no_plan_yet_the_reminder_and_the_print_stylesheet(client, territory):
    await sign_in(client, territory.coordinator)
    for path in ("/coordination", "/dashboard", PLAN):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert "Aucun plan de gestion des situations sanitaires exceptionnelles" in unescape(
            page.text
        ), path
        assert 'href="/coordination/crise/plan/modifier"' in page.text
    page = await client.get(PLAN)
    assert "Aucun plan n'est encore enregistré" in unescape(page.text)
    assert '<link rel="stylesheet" href="/static/crisis_plan_print.css" media="print">' in page.text
    assert 'href="/coordination/crise">Crise</a>' in page.text  # the menu
    css = await client.get("/static/crisis_plan_print.css")
    assert css.status_code == 200
    for rule in (".top, .skip, .no-print", "break-inside: avoid", "break-before: page",
                 "a[href]::after { content: none"):  # fmt: skip
        assert rule in css.text


async def test_the_edit_form_round_trip(client, territory, session):
    await sign_in(client, territory.coordinator)
    form = await client.get(EDIT)
    assert form.status_code == 200
    assert field_value(form.text, "lignes.contacts") == "2"  # two blank rows
    # The volunteers are chosen among the territory's GPs, with their practice.
    assert (
        f'<option value="{territory.practitioner_id}">Martin Claire — Maison de santé'
        in unescape(form.text)
    )
    # "Ajouter des lignes" keeps what was typed and shows more blank rows, the first focused.
    typed = {
        "reviewed_on": "2026-01-15",
        "contacts__0__role": "ARS",
        "contacts__0__name": "Astreinte ARS",
        "contacts__0__phone": "04 73 74 49 00",
        "volunteers__0__practitioner_id": territory.practitioner_id,
        "volunteers__0__crisis_overbooking_cap": "6",
        "volunteers__0__pledges__0__modality": "visite",
        "volunteers__0__pledges__0__weekdays": ["1", "3"],
        "volunteers__0__pledges__0__start_time": "18:00",
        "volunteers__0__pledges__0__end_time": "20:00",
        "sites__0__name": "Salle des fêtes",
        "sites__0__address": "1 place du Square",
        "sites__0__commune_insee": "15014",
        "steps__1__title": "Prévenir l'ARS",  # typed in the second row: kept, moved up
    }
    more = await post(client, with_fields(form.text, ajouter="contacts", **typed))
    assert more.status_code == 200, more.text
    text = unescape(more.text)
    assert field_value(more.text, "lignes.contacts") == "6"  # one typed + 5 blank
    assert 'value="Astreinte ARS"' in text and 'name="contacts.1.role"' in text
    assert re.search(r'id="contacts-1-role"[^>]*autofocus', more.text)
    assert re.search(r'name="steps.0.title" type="text" value="Prévenir l&#39;ARS"', more.text)
    assert re.search(r'value="3" id="volunteers-0-pledges-0-weekdays-3" checked', more.text)
    # One pledge typed: a blank one under it for the next.
    assert field_value(more.text, "lignes.volunteers.0.pledges") == "2"
    saved = await post(client, with_fields(more.text, **typed))
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == PLAN
    page = await client.get(PLAN)
    text = unescape(page.text)
    assert "Version 1 du plan enregistrée." in text
    assert "Dr Claire Martin" in text and "Visite à domicile : lundi, mercredi, 18:00–20:00" in text
    assert "Salle des fêtes" in text and "Aurillac (15014)" in text
    api = (await client.get("/v1/crisis-plans/current", headers=territory.coordinator)).json()
    assert api["version"] == 1 and api["reviewed_on"] == "2026-01-15"
    assert [(c["role"], c["phone"]) for c in api["contacts"]] == [("ARS", "04 73 74 49 00")]
    assert api["volunteers"][0]["pledges"][0]["weekdays"] == [1, 3]
    assert api["volunteers"][0]["crisis_overbooking_cap"] == 6
    assert [s["title"] for s in api["steps"]] == ["Prévenir l'ARS"]
    # The next version starts from this one's rows.
    again = await client.get(EDIT)
    assert 'value="Astreinte ARS"' in unescape(again.text)
    assert "crée la version 2" in unescape(again.text)


async def test_errors_are_named_and_linked_to_their_field(client, territory, other_territory):
    await sign_in(client, territory.coordinator)
    form = await client.get(EDIT)
    bad = await post(
        client,
        with_fields(
            form.text,
            reviewed_on="",
            contacts__0__role="ARS",
            contacts__0__name="Astreinte",
            contacts__0__phone="12",
            volunteers__0__practitioner_id=territory.practitioner_id,
            volunteers__0__pledges__0__modality="cabinet",
            volunteers__0__pledges__0__start_time="20:00",
            volunteers__0__pledges__0__end_time="18:00",
        ),
    )
    assert bad.status_code == 422
    text = unescape(bad.text)
    expected = {
        "reviewed_on": "Date de la dernière revue : Ce champ est obligatoire.",
        "contacts-0-phone": "Contact 1 — Téléphone : Numéro de téléphone français invalide.",
        "volunteers-0-pledges-0-weekdays": "Volontaire 1, engagement 1 — Jours : Cochez au moins "
        "un jour.",
    }
    for anchor, message in expected.items():
        assert f'<a href="#{anchor}">{message}</a>' in text, anchor
        assert f'id="{anchor}"' in text  # a visible input to land on
    assert 'value="Astreinte"' in text  # what was typed stays
    assert re.search(r'id="reviewed_on"[^>]*aria-invalid="true"[^>]*autofocus', bad.text)
    # The pledge's own rule, once the days are given: the end before the start.
    fixed = with_fields(
        form.text,
        reviewed_on="2026-01-15",
        volunteers__0__practitioner_id=territory.practitioner_id,
        volunteers__0__pledges__0__modality="cabinet",
        volunteers__0__pledges__0__weekdays="2",
        volunteers__0__pledges__0__start_time="20:00",
        volunteers__0__pledges__0__end_time="18:00",
    )
    r = await post(client, fixed)
    assert (
        '<a href="#volunteers-0-pledges-0-end_time">Volontaire 1, engagement 1 — Fin : La fin '
        "doit être après le début.</a>" in unescape(r.text)
    )
    # The service's rules: a GP of another territory, a commune the referential does not know.
    refused = await post(
        client,
        with_fields(
            form.text,
            reviewed_on="2026-01-15",
            volunteers__0__practitioner_id=territory.practitioner_id,
            volunteers__1__practitioner_id=other_territory.practitioner_id,
            sites__0__name="Gymnase",
            sites__0__address="rue du Stade",
            sites__0__commune_insee="99999",
        ),
    )
    assert refused.status_code == 422
    text = unescape(refused.text)
    assert '<a href="#volunteers-1-practitioner_id">Volontaire 2 — Médecin : Ce médecin' in text
    assert (
        '<a href="#sites-0-commune_insee">Lieu 1 — Code INSEE de la commune : Code INSEE '
        "inconnu du référentiel des communes, ex. 15014.</a>" in text
    )
    twice = await post(
        client,
        with_fields(
            form.text,
            reviewed_on="2026-01-15",
            volunteers__0__practitioner_id=territory.practitioner_id,
            volunteers__1__practitioner_id=territory.practitioner_id,
        ),
    )
    assert '<a href="#volunteers-1-practitioner_id">' in twice.text
    assert "figure déjà plus haut" in unescape(twice.text)
    assert (await client.get("/v1/crisis-plans", headers=territory.coordinator)).json()[
        "items"
    ] == []
    # Without the CSRF token: refused.
    assert (await client.post(EDIT, data={"reviewed_on": "2026-01-15"})).status_code == 403


async def test_versions_json_and_the_review_reminder(client, territory, other_territory, clock):
    clock.set(datetime(2026, 3, 1, 9, tzinfo=UTC))
    body = plan_body([territory.practitioner_id], reviewed_on="2025-02-20")
    v1 = (await client.post("/v1/crisis-plans", json=body, headers=territory.coordinator)).json()
    await sign_in(client, territory.coordinator)
    for path in ("/coordination", "/dashboard", PLAN):
        text = unescape((await client.get(path)).text)
        assert "Le plan de crise (version 1) doit être revu" in text, path
    assert "revue à faire" in unescape((await client.get(PLAN)).text)
    body["reviewed_on"] = "2026-02-27"
    v2 = (await client.post("/v1/crisis-plans", json=body, headers=territory.coordinator)).json()
    page = await client.get(PLAN)
    text = unescape(page.text)
    assert "doit être revu" not in text and "revue à faire" not in text
    assert "Dernière revue</dt><dd>27 février 2026" in text
    assert "Prochaine revue</dt><dd>27 février 2027" in text
    assert text.index("Version 2</a> (en vigueur)") < text.index("Version 1</a>")
    old = unescape((await client.get(f"{PLAN}/versions/{v1['id']}")).text)
    assert (
        'Vous consultez la version 1. La version en vigueur est la <a href="/coordination/crise/'
        'plan">version 2</a>' in old
    )
    download = await client.get(f"{PLAN}/versions/{v2['id']}/plan.json")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == 'attachment; filename="plan-crise-v2.json"'
    api = await client.get(f"/v1/crisis-plans/{v2['id']}", headers=territory.coordinator)
    assert download.json() == api.json()
    assert download.json()["volunteers"][0]["family_name"] == "Martin"
    # Another territory's coordinator: as if it did not exist.
    client.cookies.clear()
    await sign_in(client, other_territory.coordinator, next_=PLAN)
    assert (await client.get(f"{PLAN}/versions/{v2['id']}")).status_code == 404
    assert (await client.get(f"{PLAN}/versions/{v2['id']}/plan.json")).status_code == 404


async def test_the_dashboard_reads_the_plan_but_does_not_edit(client, territory):
    await client.post("/v1/crisis-plans", json=plan_body(), headers=territory.coordinator)
    await sign_in(client, territory.dashboard)
    page = await client.get(PLAN)
    assert page.status_code == 200 and "Contacts d'alerte" in unescape(page.text)
    assert "/coordination/crise/plan/modifier" not in page.text
    assert (await client.get(EDIT)).status_code == 403
    # No reminder for the dashboard role: it cannot act on it.
    assert "doit être revu" not in unescape(page.text)
