"""Calls for slots in Chromium, with the keyboard alone: the coordinator sets the territory's
floor, adds a group of communes and deletes it after the confirmation page; the practice
accepts calls for its GP, then stops them. Every page passes the accessibility audit (axe,
WCAG AA), with and without errors shown."""

from __future__ import annotations

from playwright.async_api import expect

from tests.test_browser_accessibility import serious_violations
from tests.test_browser_dashboard import browser, served  # noqa: F401 - fixtures
from tests.test_browser_keyboard import signed_in_page, tab_and_fill

PAGE = "/coordination/appels-creneaux"


async def test_the_coordinator_sets_floors_with_the_keyboard(served, browser, territory):  # noqa: F811
    page = await signed_in_page(browser, served, territory.coordinator)
    await page.goto(f"{served}{PAGE}")
    assert await serious_violations(page) == []
    await tab_and_fill(page, {"floor": "3"}, "Enregistrer le seuil du territoire")
    await page.wait_for_url(f"**{PAGE}")
    await expect(page.get_by_role("status")).to_contain_text("Seuil du territoire enregistré")
    # A group whose commune is unknown: the errors are shown, accessibly.
    await tab_and_fill(
        page,
        {"group-name": "Hautes Terres", "group-communes": "Nulle-Part", "group-floor": "2"},
        "Ajouter le groupe",
    )
    await page.wait_for_load_state()
    await expect(page.get_by_role("alert")).to_contain_text("introuvable")
    assert await serious_violations(page) == []
    await page.goto(f"{served}{PAGE}")
    await tab_and_fill(
        page,
        {"group-name": "Hautes Terres", "group-communes": "Saint-Flour", "group-floor": "2"},
        "Ajouter le groupe",
    )
    await page.wait_for_url(f"**{PAGE}")
    await expect(page.get_by_role("status")).to_contain_text("Groupe « Hautes Terres » enregistré")
    await expect(page.get_by_role("cell", name="Saint-Flour (15187)")).to_be_visible()
    assert await serious_violations(page) == []
    # Deleted after the confirmation page, whose button has the focus.
    await tab_and_fill(page, {}, "Supprimer Hautes Terres")
    await expect(
        page.get_by_role("heading", name="Supprimer le groupe « Hautes Terres » ?")
    ).to_be_visible()
    assert await serious_violations(page) == []
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("Groupe « Hautes Terres » supprimé")
    await expect(page.get_by_text("Aucun groupe de communes")).to_be_visible()


async def test_the_practice_accepts_and_stops_calls_with_the_keyboard(served, browser, territory):  # noqa: F811
    page = await signed_in_page(browser, served, territory.practice)
    path = f"/cabinet/medecins/{territory.practitioner_id}/appels"
    await page.goto(f"{served}/cabinet/medecins/{territory.practitioner_id}")
    link = page.get_by_role("link", name="Appels à créneaux")
    await link.focus()
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    assert page.url.endswith(path)
    assert await serious_violations(page) == []
    await tab_and_fill(page, {"email": "pas-une-adresse"}, "Accepter les appels")
    await page.wait_for_load_state()
    await expect(page.get_by_role("alert")).to_contain_text("Adresse e-mail invalide")
    assert await serious_violations(page) == []
    await page.goto(f"{served}{path}")
    await tab_and_fill(page, {"email": "dr.martin@example.fr"}, "Accepter les appels")
    await page.wait_for_url(f"**{path}")
    await expect(page.get_by_role("status")).to_contain_text("Appels à créneaux acceptés")
    await expect(page.get_by_text("ils sont envoyés à dr.martin@example.fr")).to_be_visible()
    assert await serious_violations(page) == []
    await tab_and_fill(page, {}, "Ne plus recevoir d'appels")
    await page.wait_for_load_state()
    await expect(page.get_by_role("status")).to_contain_text("ne recevra plus d'appels")
    await expect(page.get_by_text("Ce médecin ne reçoit pas d'appels à créneaux.")).to_be_visible()
