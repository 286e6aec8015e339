"""On a 390 px phone, a table's stacked rows keep their column labels."""

from __future__ import annotations

from tests.test_browser_dashboard import browser, served  # noqa: F401 - fixtures
from tests.test_browser_pages import signed_in_page

PHONE = {"width": 390, "height": 844}


async def test_tables_keep_their_column_labels_on_a_phone(served, browser, territory):  # noqa: F811
    page = await signed_in_page(browser, served, territory.coordinator, viewport=PHONE)
    await page.goto(f"{served}/coordination/cles")
    labels = await page.evaluate(
        """() => [...document.querySelectorAll("table.list tbody tr:first-child > *")]
                 .map(c => getComputedStyle(c, "::before").content)"""
    )
    assert labels == [
        '"Nom : "',
        '"Rôle : "',
        '"Début de la clé : "',
        '"Créée le : "',
        '"Créée par : "',
        '"Action : "',
    ]


async def test_tables_keep_their_header_on_a_wide_screen(served, browser, territory):  # noqa: F811
    page = await signed_in_page(browser, served, territory.coordinator)
    await page.goto(f"{served}/coordination/cles")
    assert await page.locator("table.list thead").is_visible()
    first = page.locator("table.list tbody tr:first-child > *").first
    assert await first.evaluate('c => getComputedStyle(c, "::before").content') == "none"
