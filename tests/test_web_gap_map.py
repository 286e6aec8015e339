"""The coordinator's gap map (/coordination/carences) over HTTP: the figures, the SVG
heatmaps with their data tables, the communes where the offer lacks most, the CSV."""

from __future__ import annotations

import csv
import io
from html import unescape

from tests.test_unmet_figures import scenario
from tests.test_unmet_requests import post_unmet
from tests.test_web_dashboard import sign_in


async def test_the_coordinator_reads_the_gap_map(client, territory):
    await scenario(client, territory)
    await sign_in(client, territory.coordinator)
    r = await client.get("/coordination/carences")
    assert r.status_code == 200, r.text
    text = unescape(r.text)
    assert "Diagnostic des carences" in text
    assert '<a href="/coordination/carences">Carences</a>' in r.text  # in the menu
    assert '<tr><th scope="row">Demandes SAS (placées + non satisfaites)</th><td>5</td>' in text
    assert '<tr><th scope="row">Part placée</th><td>40 %</td>' in text
    assert '<tr><th scope="row">Recherches sans résultat (comptées à part)</th><td>1</td>' in text
    assert text.count('class="chart heatmap"') == 3 and text.count("<caption>") >= 6
    # The commune without any practice, where 1 request went unmet, comes with its gap.
    assert 'data-label="Commune">Laveissenet (15100)</th>' in text  # named by the referential
    assert "Aucun créneau</th><td>2</td>" in text  # by reason


async def test_the_gap_map_period_is_chosen_and_checked(client, territory):
    await post_unmet(client, territory.regulator)
    await sign_in(client, territory.coordinator)
    r = await client.get("/coordination/carences?du=2020-01-01&au=2020-01-31")
    assert r.status_code == 200
    assert "Aucune offre ni demande sur cette période." in unescape(r.text)
    r = await client.get("/coordination/carences?du=2027-02-01&au=2027-01-01")
    assert r.status_code == 422 and 'id="au-error"' in r.text
    r = await client.get("/coordination/carences?du=n'importe")
    assert r.status_code == 422 and "Date invalide" in unescape(r.text)


async def test_the_gap_map_downloads_as_csv(client, territory):
    await scenario(client, territory)
    await sign_in(client, territory.coordinator)
    r = await client.get("/coordination/carences.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    # The default period ends today: slots and bookings made today count, future slots too
    # when they start today.
    assert sum(int(row["non_satisfaites"]) for row in rows) == 3
    assert sum(int(row["placees"]) + int(row["surnumeraires"]) for row in rows) == 2
    assert {row["jour"] for row in rows} <= {
        "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"
    }  # fmt: skip


async def test_only_coordinators_open_the_gap_map(client, territory):
    await sign_in(client, territory.regulator)
    assert (await client.get("/coordination/carences")).status_code == 403
