"""The one « Crise » page in Chromium: the admin (the ARS) chooses a territory and declares
there; the coordinator's page with its plan and past crises reads on a 390 px phone. Every
page passes the accessibility audit (axe, WCAG AA)."""

from __future__ import annotations

from playwright.async_api import expect

from tests.test_browser_accessibility import serious_violations
from tests.test_browser_dashboard import browser, served  # noqa: F401 - fixtures
from tests.test_browser_pages import signed_in_page
from tests.test_crisis_report import crisis_scenario

PHONE = {"width": 390, "height": 844}


async def test_the_admin_chooses_a_territory_and_declares_a_crisis(
    served,  # noqa: F811
    browser,  # noqa: F811
    territory,
    admin,
):
    page = await signed_in_page(browser, served, admin)
    await page.get_by_role("link", name="Crise", exact=True).click()
    await expect(page.get_by_role("heading", name="Crise : choisir le territoire")).to_be_visible()
    assert await serious_violations(page) == []
    await page.get_by_label("Territoire").select_option(str(territory.id))
    await page.get_by_role("button", name="Afficher").click()
    await expect(page.get_by_text("Territoire : CPTS Test")).to_be_visible()
    assert await serious_violations(page) == []
    await page.get_by_label("Type de crise").select_option("heatwave")
    await page.get_by_label("Intitulé").fill("Canicule de juillet")
    await page.get_by_role("button", name="Déclarer la crise").click()
    await page.wait_for_load_state()
    await expect(page.get_by_text("Crise déclarée : aucun volontaire appelé")).to_be_visible()
    await expect(
        page.get_by_role("heading", name="Situation sanitaire exceptionnelle en cours : Canicule "
                                         "de juillet")
    ).to_be_visible()  # fmt: skip
    assert await serious_violations(page) == []


async def test_the_crisis_page_reads_on_a_phone(
    served,  # noqa: F811
    browser,  # noqa: F811
    client,
    session,
    clock,
    territory,
    admin,
):
    await crisis_scenario(client, session, clock, territory, admin)
    page = await signed_in_page(browser, served, territory.coordinator, viewport=PHONE)
    await page.goto(f"{served}/coordination/crise")
    await expect(page.get_by_role("heading", name="Plan de crise")).to_be_visible()
    await expect(page.get_by_role("link", name="Rapport : Épidémie de grippe")).to_be_visible()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    assert await serious_violations(page) == []
