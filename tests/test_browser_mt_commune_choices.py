"""The public médecin traitant page in Chromium, with the keyboard alone: a commune name that
several communes bear comes back with a group of radio buttons, the focus in the commune's
field; Tab reaches the group, the arrows choose, Enter sends; the page passes the
accessibility audit; the request is registered with the commune chosen."""

from __future__ import annotations

from playwright.async_api import expect

from tests.test_browser_accessibility import serious_violations
from tests.test_browser_dashboard import browser, served  # noqa: F401 - fixtures
from tests.test_browser_keyboard import FOCUSED, tab_and_fill
from tests.test_browser_mt_self_registration import PATIENT
from tests.test_mt_self_registration import requests_of

CANTAL = "Saint-Georges (15188) — code postal 15100, département 15"


async def test_an_ambiguous_commune_chosen_with_the_arrows(
    served,  # noqa: F811
    browser,  # noqa: F811
    territory,
    session,
):
    context = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{served}/medecin-traitant/{territory.id}")
    typed = {**PATIENT, "commune": "Saint-Georges", "consentement": "x"}
    await tab_and_fill(page, typed, "Envoyer la demande")
    await page.wait_for_load_state()
    await expect(page.get_by_role("alert")).to_contain_text(
        "Commune : Plusieurs communes correspondent : choisissez la bonne dans la liste."
    )
    assert (await page.evaluate(FOCUSED))[0] == "commune"  # the field in error has the focus
    group = page.get_by_role("group", name="Précisez la commune « Saint-Georges »")
    await expect(group).to_have_accessible_description(
        "Plusieurs communes correspondent : choisissez la bonne dans la liste."
    )
    first, second = group.get_by_role("radio").nth(0), group.get_by_role("radio").nth(1)
    await expect(first).to_have_accessible_name(CANTAL)
    assert await serious_violations(page) == []
    # One Tab into the group; the arrows move the choice within it.
    await page.keyboard.press("Tab")
    await expect(first).to_be_focused()
    await page.keyboard.press("ArrowDown")
    await expect(second).to_be_checked()
    await page.keyboard.press("ArrowUp")
    await expect(first).to_be_checked()
    await expect(second).not_to_be_checked()
    await page.keyboard.press("Enter")  # sends the form (the consent is still ticked)
    await page.wait_for_load_state()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Votre demande est enregistrée")
    [request] = await requests_of(session, territory)
    assert request.patient_commune_insee == "15188"
    await context.close()
