"""The daily paths with the keyboard alone, in Chromium: Tab reaches every field in order,
Space ticks, typing fills, Enter submits. (Booking with the keyboard is in
test_browser_pages.py.)"""

from __future__ import annotations

from playwright.async_api import expect

from tests.test_browser_dashboard import browser, served  # noqa: F401 - fixtures


async def signed_in_page(browser, served, key_header):  # noqa: F811
    """A French browser (dates typed day, month, year), signed in with the keyboard."""
    context = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{served}/accueil")
    await page.get_by_label("Clé d'accès").focus()
    await page.keyboard.type(key_header["Authorization"].removeprefix("Bearer "))
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    return page


FOCUSED = """() => {
  const e = document.activeElement;
  return [e.id || "", e.tagName, e.type || "", (e.textContent || "").trim()];
}"""


async def tab_and_fill(page, values: dict[str, str], submit: str, presses: int = 80) -> None:
    """Tab from where the focus is; fill each field of `values` (by id) when the focus
    reaches it (checkboxes: Space; others: typed), then Enter on the button `submit`."""
    filled: set[str] = set()
    for _ in range(presses):
        await page.keyboard.press("Tab")
        ident, tag, kind, text = await page.evaluate(FOCUSED)
        if ident in values and ident not in filled:
            filled.add(ident)
            if kind == "checkbox":
                await page.keyboard.press("Space")
            else:
                await page.keyboard.type(values[ident])
        if tag == "BUTTON" and text == submit:
            assert filled == set(values), f"never reached: {set(values) - filled}"
            await page.keyboard.press("Enter")
            return
    raise AssertionError(f"{submit!r} not reached with Tab (filled {sorted(filled)})")


async def test_mt_registration_with_the_keyboard(served, browser, territory):  # noqa: F811
    page = await signed_in_page(browser, served, territory.coordinator)
    await page.goto(f"{served}/coordination/mt/nouvelle")
    await tab_and_fill(
        page,
        {
            "patient-family_name": "Lemoine",
            "patient-given_name": "Jeanne",
            "patient-birth_date": "02051948",  # jj/mm/aaaa
            "patient-phone": "06 12 34 56 78",
            "ald": "x",
        },
        "Inscrire le patient",
    )
    await page.wait_for_url("**/coordination/mt/*-*")  # the new request's page (its id)
    await expect(page.get_by_role("status")).to_have_text("Patient inscrit dans la file.")
    assert "ALD" in await page.locator("main").inner_text()


async def test_rule_publication_with_the_keyboard(served, browser, territory):  # noqa: F811
    page = await signed_in_page(browser, served, territory.practice)
    await page.goto(f"{served}/cabinet/medecins/{territory.practitioner_id}/regles/nouvelle")
    days = {f"jour-{d}": "x" for d in ("MO", "TU", "WE", "TH", "FR", "SA", "SU")}
    await tab_and_fill(page, days, "Prévisualiser les créneaux")
    await expect(page.get_by_role("heading", name="Aperçu")).to_be_visible()
    await tab_and_fill(page, {}, "Publier la règle", presses=400)
    await page.wait_for_url(f"**/cabinet/medecins/{territory.practitioner_id}")
    assert (await page.get_by_role("status").inner_text()).startswith("Règle publiée :")
