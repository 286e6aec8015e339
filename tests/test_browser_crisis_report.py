"""The crisis report in Chromium: reached from the coordinator's menu (« Crise », then its
past crises), no accessibility violation (axe, WCAG 2.1 AA), its tables keep their labels on
a 390 px phone, and printed for the ARS it shows the report alone.
Screenshots land in test-artifacts/."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect

from tests.test_browser_accessibility import serious_violations
from tests.test_browser_dashboard import browser, served  # noqa: F401 - fixtures
from tests.test_browser_pages import signed_in_page
from tests.test_crisis_report import crisis_scenario

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PHONE = {"width": 390, "height": 844}


async def test_the_coordinator_reads_and_prints_the_crisis_report(
    served,  # noqa: F811
    browser,  # noqa: F811
    client,
    session,
    clock,
    territory,
    admin,
):
    await crisis_scenario(client, session, clock, territory, admin)
    page = await signed_in_page(browser, served, territory.coordinator)
    await page.get_by_role("link", name="Crise", exact=True).click()
    await expect(page.get_by_role("heading", name="Crises passées")).to_be_visible()
    assert await serious_violations(page) == []
    await page.get_by_role("link", name="Rapport : Épidémie de grippe").click()
    await expect(
        page.get_by_role("heading", name="Rapport de crise : Épidémie de grippe")
    ).to_be_visible()
    chart = page.locator("svg.chart")
    box = await chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    await expect(page.get_by_role("row", name="Créneaux de crise ouverts 6")).to_be_visible()
    await expect(page.get_by_role("table", name="Qui a été appelé")).to_be_visible()
    assert await serious_violations(page) == []
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "crisis-report.png", full_page=True)

    await page.emulate_media(media="print")
    await expect(page.get_by_role("navigation", name="Menu principal")).to_be_hidden()
    await expect(page.get_by_text("rapport à l'agence régionale de santé")).to_be_visible()
    await expect(page.get_by_role("link", name="la chronologie")).to_be_hidden()
    await page.screenshot(path=ARTIFACTS / "crisis-report-print.png", full_page=True)


async def test_the_report_tables_keep_their_labels_on_a_phone(
    served,  # noqa: F811
    browser,  # noqa: F811
    client,
    session,
    clock,
    territory,
    admin,
):
    s = await crisis_scenario(client, session, clock, territory, admin)
    page = await signed_in_page(browser, served, territory.coordinator, viewport=PHONE)
    await page.goto(f"{served}/coordination/crise/{s.crisis_id}/rapport")
    labels = await page.evaluate(
        """() => [...document.querySelectorAll(
                   "#appels-titre ~ table.list tbody tr:first-child > *")]
                 .map(c => getComputedStyle(c, "::before").content)"""
    )
    assert labels == [
        '"Médecin : "',
        '"Cabinet : "',
        '"Appelé le : "',
        '"Courriel : "',
        '"Ouvert le : "',
        '"Délai depuis l\'appel : "',
        '"Créneaux ouverts : "',
    ]
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    assert await serious_violations(page) == []
    await page.screenshot(path=ARTIFACTS / "crisis-report-phone.png", full_page=True)
