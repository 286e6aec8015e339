"""The CPTS slots page in Chromium: a practice finds a colleague's CPTS slot from its menu and
books it with the keyboard."""

from __future__ import annotations

from playwright.async_api import expect

from tests.test_browser_dashboard import browser, served  # noqa: F401 - fixtures
from tests.test_browser_pages import fill_patient, shot, signed_in_page
from tests.test_slot_search import add_slot


async def test_practice_books_a_cpts_slot_with_the_keyboard(served, browser, client, territory):  # noqa: F811
    gp = territory.practitioner_id
    sas = await add_slot(client, territory, gp, 3)
    await add_slot(client, territory, gp, 4, visibility="cpts")
    second = await add_slot(client, territory, gp, 5, visibility="cpts")
    page = await signed_in_page(browser, served, territory.practice)
    await page.get_by_role("link", name="Créneaux CPTS").click()
    await page.wait_for_url(f"{served}/cpts")
    await expect(page.get_by_label("Commune", exact=True)).to_be_focused()
    await page.get_by_role("button", name="Rechercher").press("Enter")
    await page.wait_for_url("**/cpts?*")
    await expect(page.locator("#resultats")).to_be_focused()
    radios = page.get_by_role("radio")
    assert await radios.count() == 2
    assert await page.locator(f"input[value='{sas}']").count() == 0  # the SAS's slot
    await page.keyboard.press("Tab")
    await expect(radios.first).to_be_focused()
    await page.keyboard.press("Space")
    await page.keyboard.press("ArrowDown")
    assert await radios.nth(1).get_attribute("value") == second
    assert await radios.nth(1).is_checked()
    await fill_patient(page)
    await page.get_by_label("Motif (facultatif)").fill("Suture à contrôler")
    await page.get_by_label("Motif (facultatif)").press("Enter")
    await page.wait_for_url("**/rendez-vous/*")
    assert await page.get_by_role("status").inner_text() == "Rendez-vous réservé."
    assert "LEMOINE Jeanne" in await page.locator("main").inner_text()
    await shot(page, "practice-cpts-booked")
