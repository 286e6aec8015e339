"""The gap map's trend by ISO week (local time): offer, placed and unmet per week of the
chosen period, as an SVG with its data table and as a CSV, on the hand-counted scenario of
tests/test_unmet_figures (3 SAS slots, 2 placed: a booking and a surnuméraire, the cancelled
booking not; 3 unmet requests declared)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

from tests.test_unmet_figures import scenario
from tests.test_web_dashboard import sign_in

PARIS = ZoneInfo("Europe/Paris")


def period() -> tuple[str, list[str]]:
    """Two weeks either side of today, and the ISO weeks (YYYY-Www) they span."""
    today = datetime.now(PARIS).date()
    first, last = today - timedelta(days=14), today + timedelta(days=14)
    monday, weeks = first - timedelta(days=first.weekday()), []
    while monday <= last:
        iso = monday.isocalendar()
        weeks.append(f"{iso.year}-W{iso.week:02d}")
        monday += timedelta(days=7)
    return f"du={first}&au={last}", weeks


async def test_the_weekly_trend_csv_counts_offer_placed_and_unmet(client, territory):
    await scenario(client, territory)
    await sign_in(client, territory.coordinator)
    query, weeks = period()
    r = await client.get(f"/coordination/carences-semaines.csv?{query}")
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["semaine_iso"] for row in rows] == weeks  # every week, empty ones as zeros
    total = {k: sum(int(row[k]) for row in rows) for k in
             ("creneaux_sas", "placees", "non_satisfaites", "demandes_sas")}  # fmt: skip
    assert total == {"creneaux_sas": 3, "placees": 2, "non_satisfaites": 3, "demandes_sas": 5}
    today = datetime.now(PARIS).isocalendar()
    [this_week] = [row for row in rows if row["semaine_iso"] == f"{today.year}-W{today.week:02d}"]
    assert (this_week["placees"], this_week["non_satisfaites"]) == ("2", "3")


async def test_the_gap_map_shows_the_weekly_trend_with_its_table(client, territory):
    await scenario(client, territory)
    await sign_in(client, territory.coordinator)
    query, weeks = period()
    r = await client.get(f"/coordination/carences?{query}")
    assert r.status_code == 200, r.text
    text = unescape(r.text)
    section = text[text.index('id="semaines-titre"') : text.index('id="offre-titre"')]
    assert 'class="chart"' in section and "<caption>Offre et demande par semaine ISO" in section
    assert section.count('data-label="Semaine"') == len(weeks)
    assert "carences-semaines.csv?" in text


async def test_only_coordinators_download_the_trend(client, territory):
    await sign_in(client, territory.regulator)
    assert (await client.get("/coordination/carences-semaines.csv")).status_code == 403
