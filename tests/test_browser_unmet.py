"""Unmet SNP demand in Chromium: the regulator records an unmet request from an empty search
with one keystroke; the coordinator reads the gap map."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect
from sqlalchemy import select

from app.unmet_demand.models import UnmetRequest
from tests.test_browser_dashboard import browser, served  # noqa: F401 - fixtures
from tests.test_browser_keyboard import FOCUSED, signed_in_page

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


async def test_regulator_records_an_unmet_request_with_one_keystroke(
    served,  # noqa: F811
    browser,  # noqa: F811
    territory,
    session,
):
    page = await signed_in_page(browser, served, territory.regulator)
    await page.goto(f"{served}/regulation?commune=15014&rayon=30&modalite=visite#resultats")
    await expect(page.get_by_text("Aucun créneau libre dans les 48 heures")).to_be_visible()
    _, tag, _, text = await page.evaluate(FOCUSED)
    assert (tag, text) == ("BUTTON", "Enregistrer la demande non satisfaite")
    async with page.expect_navigation():
        await page.keyboard.press("Enter")  # the one keystroke
    await expect(page.get_by_text("Demande non satisfaite enregistrée")).to_be_visible()
    rows = list(await session.scalars(select(UnmetRequest).order_by(UnmetRequest.kind)))
    assert [(r.kind, r.reason, r.commune_insee, r.modality) for r in rows] == [
        ("declared", "no_slot", "15014", "visite"),
        ("empty_search", "no_slot", "15014", "visite"),
    ]


async def test_coordinator_reads_the_gap_map(served, browser, territory, client):  # noqa: F811
    from tests.test_unmet_figures import scenario

    await scenario(client, territory)
    page = await signed_in_page(browser, served, territory.coordinator)
    await page.get_by_role("link", name="Carences").click()
    await expect(
        page.get_by_role("heading", name="Diagnostic des carences en soins non programmés")
    ).to_be_visible()
    await expect(page.locator("svg.heatmap")).to_have_count(3)
    for svg in await page.locator("svg.heatmap").all():
        box = await svg.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
    await expect(page.get_by_role("row", name="Non satisfaites (déclarées) 3")).to_be_visible()
    await page.get_by_text("Voir les données").first.click()
    await expect(
        page.get_by_role("table", name="Créneaux SAS publiés par jour et heure")
    ).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "gap-map.png", full_page=True)
