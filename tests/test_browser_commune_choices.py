"""On a 390 px phone, a patient's commune typed as a name several communes bear: the booking
form comes back with a radio button per commune (name, postal code, département), reached
and chosen with the keyboard, and passes the accessibility audit (issue 25)."""

from __future__ import annotations

from playwright.async_api import expect

from tests.test_browser_accessibility import serious_violations
from tests.test_browser_dashboard import browser, served  # noqa: F401 - fixtures
from tests.test_browser_pages import fill_patient, shot
from tests.test_browser_phone import PHONE, signed_in_page
from tests.test_web_pages import publish_all_day


async def test_patient_commune_chosen_by_keyboard(served, browser, client, territory):  # noqa: F811
    await publish_all_day(client, territory)
    page = await signed_in_page(browser, served, territory.regulator, viewport=PHONE)
    await page.get_by_label("Commune", exact=True).fill("Aurillac")
    await page.get_by_role("button", name="Rechercher").press("Enter")
    await page.wait_for_url("**/regulation?commune=Aurillac*")
    await page.get_by_role("radio").first.check()
    await fill_patient(page)
    await page.get_by_label("Commune du patient (facultatif)").fill("Saint-Georges")
    await page.get_by_label("Commune du patient (facultatif)").press("Enter")
    await page.wait_for_load_state()
    group = page.get_by_role("group", name="Précisez la commune « Saint-Georges »")
    await expect(group).to_be_visible()
    cantal = group.get_by_role(
        "radio", name="Saint-Georges (15188) — code postal 15100, département 15"
    )
    await expect(group.get_by_role("radio").first).to_have_accessible_name(
        "Saint-Georges (15188) — code postal 15100, département 15"
    )
    # The error summary's link puts the keyboard in the field; one Tab reaches the choices.
    await page.get_by_role("link", name="Commune du patient", exact=False).first.click()
    await expect(page.get_by_label("Commune du patient (facultatif)")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(cantal).to_be_focused()
    await page.keyboard.press("Space")
    await expect(cantal).to_be_checked()
    # Nothing wider than the phone: the labels wrap.
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]
    assert await serious_violations(page) == []
    await shot(page, "commune-choices-390")
    await page.get_by_label("Motif (facultatif)").press("Enter")
    await page.wait_for_url("**/rendez-vous/*")
    assert "Saint-Georges (15188)" in await page.locator("main").inner_text()


async def test_search_commune_chosen_by_keyboard(served, browser, territory):  # noqa: F811
    page = await signed_in_page(browser, served, territory.regulator, viewport=PHONE)
    await page.get_by_label("Commune", exact=True).fill("Saint-Georges")
    await page.get_by_label("Commune", exact=True).press("Enter")
    await page.wait_for_url("**/regulation?commune=Saint-Georges*")
    group = page.get_by_role("group", name="Précisez la commune « Saint-Georges »")
    first = group.get_by_role("radio").first
    await expect(first).to_have_accessible_name("Saint-Georges — 15100, département 15")
    await first.focus()
    await page.keyboard.press("ArrowDown")  # a radio group moves with the arrows
    await page.keyboard.press("ArrowUp")
    await expect(first).to_be_checked()
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert await serious_violations(page) == []
    await shot(page, "search-commune-choices-390")
    await page.keyboard.press("Enter")  # submits the choice
    await page.wait_for_url("**/regulation?*commune=15188*")
    assert await page.get_by_label("Commune", exact=True).input_value() == "Saint-Georges (15100)"


async def test_practice_postal_code_error_at_390px(served, browser, territory):  # noqa: F811
    page = await signed_in_page(browser, served, territory.coordinator, viewport=PHONE)
    await page.goto(f"{served}/coordination/annuaire/cabinets/nouveau")
    await page.get_by_label("Nom du cabinet").fill("Cabinet du Lac")
    await page.get_by_label("Adresse").fill("1 rue du Lac")
    await page.get_by_label("Code postal (facultatif)").fill("15000")
    await page.get_by_label("Commune", exact=True).fill("Saint-Flour")
    await page.get_by_label("Latitude").fill("45.03")
    await page.get_by_label("Longitude").fill("3.09")
    await page.get_by_role("button", name="Ajouter le cabinet").click()
    await page.wait_for_load_state()
    link = page.get_by_role("link", name="n'est pas celui de Saint-Flour", exact=False)
    await link.click()
    await expect(page.get_by_label("Code postal (facultatif)")).to_be_focused()
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert await serious_violations(page) == []
    await shot(page, "practice-postal-code-390")
    await page.get_by_label("Code postal (facultatif)").fill("15100")
    await page.get_by_role("button", name="Ajouter le cabinet").click()
    await page.wait_for_url("**/coordination/annuaire*")
    assert "1 rue du Lac, 15100 Saint-Flour" in await page.locator("main").inner_text()
