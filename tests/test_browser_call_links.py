"""The link of a call for slots in Chromium: the practice, signed out, opens it, signs in,
lands on the prefilled one-off slot form and publishes the slot; the pages of a tampered or
expired link pass the accessibility audit."""

from __future__ import annotations

from playwright.async_api import expect
from sqlalchemy import func, select

from app.scheduling.models import Slot
from tests.test_browser_accessibility import audit
from tests.test_browser_dashboard import browser, served  # noqa: F401 - fixtures
from tests.test_browser_pages import signed_in_page
from tests.test_call_links import link_path, webhook_link


async def test_the_practice_follows_the_link_signs_in_and_publishes_the_slot(
    served,  # noqa: F811
    browser,  # noqa: F811
    client,
    territory,
    session,
):
    link = await webhook_link(client, territory, session)
    before = await session.scalar(select(func.count()).select_from(Slot))
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{served}{link_path(link)}")
    await page.get_by_label("Clé d'accès").fill(
        territory.practice["Authorization"].removeprefix("Bearer ")
    )
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_load_state()
    await expect(page.get_by_role("heading", name="Ajouter un créneau")).to_be_visible()
    await expect(page.get_by_text("Appel à créneaux de votre CPTS")).to_be_visible()
    assert await page.get_by_label("Début").input_value() != ""
    assert await page.get_by_label("Fin").input_value() != ""
    assert await audit(page, served, [link_path(link)]) == []
    await page.get_by_role("button", name="Ajouter le créneau").click()
    await page.wait_for_load_state()
    await expect(page.get_by_text("Créneau ajouté le")).to_be_visible()
    after = await session.scalar(select(func.count()).select_from(Slot))
    assert after == before + 1


async def test_refused_links_pass_the_audit(served, browser, client, territory, session):  # noqa: F811
    link = await webhook_link(client, territory, session)
    page = await signed_in_page(browser, served, territory.practice)
    tampered = link_path(link)[:-3] + "xyz"
    assert await audit(page, served, [tampered, "/cabinet/appel-creneaux?jeton=rien"]) == []
    await expect(page.get_by_role("heading", name="Lien invalide")).to_be_visible()
