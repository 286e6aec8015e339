"""A regulator sent from the national SAS platform books on the booking page, in a real
headless Chromium (Debian's) against the service served by uvicorn, real PostgreSQL and a real
local SMTP server: sign-in by e-mailed link, back on the page, book, confirmation.
Screenshots in test-artifacts/."""

from __future__ import annotations

from urllib.parse import quote

from playwright.async_api import expect
from sqlalchemy import select

from app.directory.models import RegulatorAccount
from app.outbox.models import OutboxMessage
from app.scheduling.booking_models import Booking
from tests.test_agenda_page import (  # noqa: F401 - fixtures
    EMAIL,
    account_id,
    local,
    platform_url,
    settings,
    smtp,
)
from tests.test_browser_dashboard import browser, served  # noqa: F401 - fixtures
from tests.test_browser_pages import fill_patient, shot
from tests.test_web_pages import publish_all_day


async def test_regulator_from_the_platform_signs_in_by_email_and_books(
    served,  # noqa: F811
    browser,  # noqa: F811
    client,
    territory,
    account_id,  # noqa: F811
    smtp,  # noqa: F811
    session,
    platform_url,  # noqa: F811
):
    await publish_all_day(client, territory)
    page_url = f"/agenda/{territory.practitioner_id}?origin=sas"
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{served}{page_url}")  # as the platform's link opens it
    assert page.url == f"{served}/agenda/connexion?next={quote(page_url, safe='')}"
    await expect(page.get_by_label("Adresse e-mail de votre compte SAS")).to_be_focused()
    await page.get_by_label("Adresse e-mail de votre compte SAS").fill(EMAIL)
    await page.get_by_role("button", name="Recevoir un lien de connexion").click()
    status = page.get_by_role("status")
    assert "un lien de connexion vient d'y être envoyé" in await status.inner_text()
    await shot(page, "agenda-sign-in-link-sent")

    await smtp.inbox.wait(1)
    await page.goto(f"{served}{local(smtp.inbox.link())}")  # the link in the e-mail
    await page.get_by_role("button", name="Se connecter et continuer").click()
    await page.wait_for_url(f"{served}{page_url}")  # back on the page asked, origin kept
    heading = page.get_by_role("heading", level=1)
    assert await heading.inner_text() == "Réserver avec le Dr Claire Martin"
    radios = page.get_by_role("radio")
    await expect(radios.first).to_be_focused()  # ready to choose with the arrows
    await page.keyboard.press("ArrowDown")
    assert await radios.nth(1).is_checked()
    chosen = await radios.nth(1).get_attribute("value")
    await fill_patient(page)
    await page.get_by_label("N° de dossier SAS (facultatif)").fill("SAS15-2026-000999")
    await shot(page, "agenda-booking-page")
    await page.get_by_label("N° de dossier SAS (facultatif)").press("Enter")  # submits
    await page.wait_for_url(f"**/agenda/{territory.practitioner_id}/rendez-vous/*?origin=sas")
    assert await page.get_by_role("status").inner_text() == "Rendez-vous réservé."
    body = await page.locator("main").inner_text()
    assert "LEMOINE Jeanne" in body and "par Marc Durand" in body
    await shot(page, "agenda-booked")

    booking = await session.scalar(select(Booking).where(Booking.slot_id == chosen))
    operator = await session.scalar(
        select(RegulatorAccount.technical_id).where(
            RegulatorAccount.id == booking.operator_account_id
        )
    )
    assert operator == account_id  # the signed-in account booked
    queued = await session.scalar(
        select(OutboxMessage.event_type).where(OutboxMessage.ordering_key == booking.id)
    )
    assert queued == "appointment.booked"  # the platform is told

    await page.get_by_role("link", name="Retour aux créneaux du Dr Martin").click()
    assert await page.locator(f"input[value='{chosen}']").count() == 0  # no longer offered
    await page.set_viewport_size({"width": 390, "height": 844})
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await shot(page, "agenda-booking-page-phone")
