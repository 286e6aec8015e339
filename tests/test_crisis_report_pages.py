"""The crisis report page (/coordination/crise/{id}/rapport), the list of crises and the
page's CSV, on the hand-counted scenario of tests/test_crisis_report.py."""

from __future__ import annotations

import html
import uuid

from app.api.indicators import current_time
from tests.test_crisis_report import crisis_scenario, paris
from tests.test_web_dashboard import sign_in


def squeeze(html: str) -> str:
    return " ".join(html.split())


async def test_the_coordinator_reaches_the_report_from_the_menus_crisis_page(
    client, session, clock, territory, admin
):
    s = await crisis_scenario(client, session, clock, territory, admin)
    await sign_in(client, territory.coordinator)
    home = await client.get("/coordination/carences")
    assert '<a href="/coordination/crise">Crise</a>' in home.text
    crisis_page = squeeze((await client.get("/coordination/crise")).text)
    assert (
        f'<a href="/coordination/crise/{s.crisis_id}/rapport">Rapport : Épidémie de grippe</a>'
        in crisis_page
    )
    r = await client.get("/coordination/rapports-de-crise")  # the list of them all, still
    assert r.status_code == 200, r.text
    text = squeeze(r.text)
    assert f'<a href="/coordination/crise/{s.crisis_id}/rapport">Épidémie de grippe</a>' in text
    assert "terminée le jeu. 12 mars 2026 à 18:00" in text


async def test_the_report_page_shows_the_figures_tables_calls_and_timeline(
    client, session, clock, territory, admin
):
    s = await crisis_scenario(client, session, clock, territory, admin)
    await sign_in(client, territory.coordinator)
    r = await client.get(f"/coordination/crise/{s.crisis_id}/rapport")
    assert r.status_code == 200, r.text
    text = squeeze(r.text)
    assert "<h1>Rapport de crise : Épidémie de grippe</h1>" in text
    assert 'href="/static/crisis-report-print.css" media="print"' in text
    assert "<dd>Épidémie</dd>" in text and "Aurillac (15014)" in text
    assert '<th scope="row">Créneaux de crise ouverts</th><td>6</td>' in text
    assert '<th scope="row">Engagement du plan sur la période (créneaux)</th><td>16</td>' in text
    assert "<td>2 (67 %)</td>" in text  # calls followed by an opening
    assert "<td>1 (33 %)</td>" in text  # within 2 h
    # the chart and its data table, each row labelled for a phone
    assert 'class="chart"' in text
    assert "Créneaux ouverts 10/03 : 2" in text and "Engagement du plan 11/03 : 6" in text
    assert ('<th scope="row" data-label="Jour">mar. 10 mars</th><td data-label="Créneaux '
            'ouverts">2</td><td data-label="Engagement du plan">8</td>') in text  # fmt: skip
    assert ('<td data-label="Réservés">2</td><td data-label="Honorés">0</td><td '
            'data-label="Non honorés">0</td><td data-label="Annulés">1</td>') in text  # fmt: skip
    assert '<th scope="row">Trop loin</th><td>1</td>' in text
    assert ('<th scope="row" data-label="Commune">Aurillac (15014)</th>'
            '<td data-label="Demandes">2</td>') in text  # fmt: skip
    assert ('<th scope="row" data-label="Médecin">Dr Jean Bernard</th>') in text
    assert '<td data-label="Délai depuis l\'appel">23 h 00 min</td>' in text
    assert '<td data-label="Délai depuis l\'appel">1 h 30 min</td>' in text
    assert '<td data-label="Courriel">échec</td>' in text
    assert '<td data-label="Ouvert le">pas encore</td>' in text
    assert "— Ouverture de créneaux : Dr Claire Martin (4 créneaux)</li>" in text
    assert "— Fin de la crise</li>" in text
    csv = await client.get(f"/coordination/crise/{s.crisis_id}/rapport.csv?partie=calls")
    assert csv.status_code == 200
    assert csv.content.decode("utf-8-sig").startswith("Médecin;Cabinet;Appelé le")


async def test_the_dashboard_key_reads_the_report_and_others_do_not(
    client, session, clock, territory, other_territory, admin
):
    s = await crisis_scenario(client, session, clock, territory, admin)
    path = f"/coordination/crise/{s.crisis_id}/rapport"
    await sign_in(client, territory.dashboard)
    assert (await client.get(path)).status_code == 200
    await sign_in(client, other_territory.coordinator)
    assert (await client.get(path)).status_code == 404
    assert (await client.get(f"/coordination/crise/{uuid.uuid4()}/rapport")).status_code == 404
    await sign_in(client, territory.regulator)
    assert (await client.get(path)).status_code == 403


async def test_no_crisis_yet(client, territory):
    await sign_in(client, territory.coordinator)
    r = await client.get("/coordination/rapports-de-crise")
    assert "Aucune crise déclarée sur ce territoire." in r.text


async def test_the_dashboard_shows_the_crisis_figures_of_the_year(
    client, session, clock, territory, admin
):
    await crisis_scenario(client, session, clock, territory, admin)  # March 2026
    # the dashboard's clock (its routes' `current_time`): two days after the crisis
    client._transport.app.dependency_overrides[current_time] = lambda: paris(14, 12)
    await sign_in(client, territory.dashboard)
    r = await client.get("/dashboard")
    assert r.status_code == 200, r.text
    text = html.unescape(squeeze(r.text))
    assert "<h2>Réponse aux crises sanitaires</h2>" in text
    assert "Année d'indicateurs 2026" in text
    for value, label in (
        ("1", "situations sanitaires exceptionnelles déclarées"),
        ("3", "médecins volontaires appelés"),
        ("67 %", "part des appels suivis d'une ouverture de créneaux"),
        ("33 %", "part des appels ouverts dans les 2 h de la déclaration"),
        ("6", "créneaux de crise ouverts"),
        ("4", "créneaux de crise réservés"),
    ):
        assert f'<span class="value">{value}</span> <span class="label">{label}' in text
    assert f'href="/coordination/rapports-de-crise?territory_id={territory.id}"' in text
    listing = await client.get(f"/coordination/rapports-de-crise?territory_id={territory.id}")
    assert "Épidémie de grippe" in listing.text
