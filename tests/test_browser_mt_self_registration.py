"""The public médecin traitant page in Chromium, with the keyboard alone: Tab reaches every
field in order (never the honeypot), an error names its field and takes the focus, Space
ticks the consent, Enter sends; then the status lookup with the reference."""

from __future__ import annotations

from playwright.async_api import expect

from tests.test_browser_dashboard import browser, served  # noqa: F401 - fixtures
from tests.test_browser_keyboard import FOCUSED, tab_and_fill

PATIENT = {
    "patient-family_name": "Roux",
    "patient-given_name": "Marcel",
    "patient-birth_date": "12041980",  # jj/mm/aaaa
    "patient-phone": "06 11 22 33 44",
    "commune": "15014",
    "ald": "x",
}


async def test_a_patient_registers_and_checks_their_status_with_the_keyboard(
    served,  # noqa: F811
    browser,  # noqa: F811
    territory,
):
    context = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{served}/medecin-traitant")
    await page.get_by_role("link", name="CPTS Test", exact=True).focus()
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    # Everything but the consent: the page says which field is missing and focuses it.
    await tab_and_fill(page, PATIENT, "Envoyer la demande")
    await page.wait_for_load_state()
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("Accord : Votre accord est nécessaire")
    assert (await page.evaluate(FOCUSED))[0] == "consentement"
    await page.keyboard.press("Space")
    await expect(page.locator("#consentement")).to_be_checked()
    await tab_and_fill(page, {}, "Envoyer la demande")
    await page.wait_for_load_state()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Votre demande est enregistrée")
    reference = await page.locator(".reference").inner_text()
    # Where the patient stands: the reference and the birth date, nothing else shown.
    await page.get_by_role("link", name="suivre votre demande").focus()
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    await tab_and_fill(
        page,
        {"reference": reference, "birth_date": "12041980"},
        "Voir où en est la demande",
    )
    await page.wait_for_load_state()
    status = page.get_by_role("status")
    await expect(status).to_contain_text("dans la file d'attente")
    main = await page.locator("main").inner_text()
    assert "Roux" not in main and "Marcel" not in main
    await context.close()
