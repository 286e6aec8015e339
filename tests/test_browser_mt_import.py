"""The CPAM list import in Chromium, with the keyboard alone (the file itself is chosen in the
system's dialog, which a test cannot drive: it is set on the field the Tab key reached): read
the file, change a column with the arrow keys, preview again, import; every step passes the
accessibility audit, errors shown included."""

from __future__ import annotations

from playwright.async_api import expect

from tests.test_browser_accessibility import serious_violations
from tests.test_browser_dashboard import browser, served  # noqa: F401 - fixtures
from tests.test_browser_keyboard import FOCUSED, signed_in_page, tab_and_fill
from tests.test_mt_cpam_import import CP1252_LIST

PAGE = "/coordination/import-cpam"
FILE = {"name": "liste-cpam.csv", "mimeType": "text/csv", "buffer": CP1252_LIST}


async def tab_to(page, ident: str, presses: int = 60) -> None:
    for _ in range(presses):
        await page.keyboard.press("Tab")
        if (await page.evaluate(FOCUSED))[0] == ident:
            return
    raise AssertionError(f"#{ident} not reached with Tab")


async def test_coordinator_imports_a_cpam_list_with_the_keyboard(
    served,  # noqa: F811
    browser,  # noqa: F811
    territory,
):
    page = await signed_in_page(browser, served, territory.coordinator)
    await page.goto(f"{served}{PAGE}")
    found = await serious_violations(page)
    # Sent without a file: the error names the field and takes the focus.
    await tab_and_fill(page, {}, "Lire le fichier")
    await page.wait_for_load_state()
    await expect(page.get_by_role("alert")).to_contain_text("Choisissez le fichier CSV")
    assert (await page.evaluate(FOCUSED))[0] == "fichier"
    found += await serious_violations(page)
    await page.locator("#fichier").set_input_files(FILE)
    await tab_and_fill(page, {}, "Lire le fichier")
    await page.wait_for_load_state()
    await expect(
        page.get_by_role("heading", name="Aperçu : ce que ferait l'import")
    ).to_be_visible()
    await expect(page.locator("#map-ald")).to_have_value("ALD")
    errors = page.get_by_role("table", name="Erreurs par ligne")
    await expect(errors).to_contain_text("ALD : oui/non, 1/0 ou vide.")
    found += await serious_violations(page)
    # The ALD column left out, with the keyboard: its flag is no longer read.
    await page.locator("body").focus()
    await tab_to(page, "map-ald")
    await page.keyboard.press("Home")
    await expect(page.locator("#map-ald")).to_have_value("")
    await tab_and_fill(page, {}, "Mettre à jour l'aperçu")
    await page.wait_for_load_state()
    await expect(page.locator("#map-ald")).to_have_value("")
    await expect(errors).not_to_contain_text("ALD")
    await tab_and_fill(page, {}, "Importer : 2 nouvelles demandes, 1 fusion")
    await page.wait_for_load_state()
    await expect(page.get_by_role("heading", name="Import terminé")).to_be_visible()
    summary = await page.get_by_role("list", name="Import terminé").inner_text()
    assert "2\ndemandes créées" in summary and "3\nlignes rejetées" in summary
    found += await serious_violations(page)
    assert found == []
