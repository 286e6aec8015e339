"""The pages the other browser tests do not open, in a real headless Chromium (Debian's):
the coordinator's directory forms, registration and keys pages and bookings list; the
regulator's surnuméraire booking and bookings list; the practice's one-off slot, absence,
rule edit and médecin traitant pages. Screenshots in test-artifacts/."""

from __future__ import annotations

from datetime import date, timedelta

from playwright.async_api import expect

from tests.test_browser_dashboard import browser, served  # noqa: F401 - fixtures
from tests.test_browser_pages import fill_patient, shot, signed_in_page
from tests.test_web_coordination import register_via_api
from tests.test_web_pages import publish_all_day
from tests.test_web_practice_mt import propose


async def test_coordinator_directory_keys_and_registration_pages(served, browser, territory):  # noqa: F811
    page = await signed_in_page(browser, served, territory.coordinator)
    await page.get_by_role("link", name="Annuaire").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Annuaire du territoire")
    await page.get_by_role("link", name="Ajouter un cabinet").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ajouter un cabinet")
    await page.get_by_label("Latitude").fill("91")
    await page.get_by_role("button", name="Ajouter le cabinet").click()
    alert = page.get_by_role("alert")
    assert "Latitude invalide : un nombre entre -90 et 90" in await alert.inner_text()
    await expect(page.get_by_label("Nom du cabinet")).to_be_focused()  # the first error
    await shot(page, "coordinator-practice-errors")
    await page.get_by_label("Nom du cabinet").fill("Cabinet du Lioran")
    await page.get_by_label("Adresse", exact=True).fill("2 place de la Gare")
    await page.get_by_label("Commune", exact=True).fill("15102")
    await page.get_by_label("Latitude").fill("45,0849")
    await page.get_by_label("Longitude").fill("2.7381")
    await page.get_by_role("button", name="Ajouter le cabinet").click()
    await expect(page.get_by_role("status")).to_have_text("Cabinet « Cabinet du Lioran » ajouté.")
    await page.get_by_role("link", name="Modifier le cabinet Cabinet du Lioran").click()
    await page.get_by_label("Téléphone (facultatif)").fill("04 71 49 50 00")
    await page.get_by_role("button", name="Enregistrer le cabinet").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Cabinet « Cabinet du Lioran » enregistré."
    )
    assert "04 71 49 50 00" in await page.locator("main").inner_text()
    await page.get_by_role("link", name="Modifier le Dr Martin").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Dr Claire Martin")
    await page.get_by_label("Accepte des patients en surnuméraire").check()
    await page.get_by_label("Nombre maximum de surnuméraires par jour").fill("1")
    await shot(page, "coordinator-gp-form")
    await page.get_by_role("button", name="Enregistrer le médecin").click()
    await expect(page.get_by_role("status")).to_have_text("Dr Claire Martin enregistré(e).")
    assert "surnuméraires : 1 par jour" in await page.locator("main").inner_text()
    await shot(page, "coordinator-directory")

    await page.goto(f"{served}/coordination/mt/nouvelle")
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Inscrire un patient dans la file médecin traitant"
    )
    await page.get_by_role("link", name="Clés d'accès").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Clés d'accès")
    await shot(page, "coordinator-keys")
    await page.get_by_role("link", name="Rendez-vous").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Rendez-vous")


async def test_regulator_overbooks_and_lists_the_bookings(served, browser, client, territory):  # noqa: F811
    r = await client.patch(
        f"/v1/practitioners/{territory.practitioner_id}",
        json={"accepts_overbooking": True, "overbooking_daily_cap": 1},
        headers=territory.coordinator,
    )
    assert r.status_code == 200
    page = await signed_in_page(browser, served, territory.regulator)
    await page.get_by_role("link", name="Rendez-vous surnuméraire", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Rendez-vous surnuméraire")
    day = date.today() + timedelta(days=1)  # within the 48-hour SNP window, whatever the time

    async def book(family: str, at: str) -> None:
        await page.get_by_label("Médecin", exact=True).select_option(territory.practitioner_id)
        await page.get_by_label("Date et heure").fill(f"{day}T{at}")
        await fill_patient(page, family)
        await page.get_by_role("button", name="Réserver en surnuméraire").click()

    await book("Lemoine", "18:30")
    await page.wait_for_url("**/rendez-vous/*")
    await expect(page.get_by_role("status")).to_have_text("Rendez-vous surnuméraire réservé.")
    assert "surnuméraire" in await page.locator("main").inner_text()
    await page.goto(f"{served}/regulation/surnumeraire")
    await book("Bernard", "19:00")
    alert = await page.get_by_role("alert").inner_text()
    assert "Le Dr Martin a déjà atteint son maximum de 1 rendez-vous surnuméraire(s)" in alert
    assert await page.get_by_label("Nom", exact=True).input_value() == "Bernard"  # kept
    await shot(page, "regulator-overbook-cap")
    await page.get_by_role("link", name="Mes réservations").click()
    body = await page.locator("main").inner_text()
    assert "LEMOINE Jeanne" in body and "surnuméraire" in body
    await shot(page, "regulator-bookings")


async def test_practice_slot_absence_rule_and_mt_pages(served, browser, client, territory):  # noqa: F811
    await publish_all_day(client, territory)
    request_id = await register_via_api(client, territory)
    await propose(client, territory, request_id)
    page = await signed_in_page(browser, served, territory.practice)
    base = f"{served}/cabinet/medecins/{territory.practitioner_id}"
    day = date.today() + timedelta(days=3)
    await page.goto(base)
    await page.get_by_role("link", name="Modifier").first.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Modifier la règle — Dr Claire Martin"
    )
    await page.goto(base)
    await page.get_by_role("link", name="Déclarer une absence").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Déclarer une absence — Dr Claire Martin"
    )
    await page.get_by_label("Début").fill(f"{day}T08:00")
    await page.get_by_label("Fin", exact=True).fill(f"{day}T12:00")
    await page.get_by_label("Motif (facultatif)").fill("Formation")
    await page.get_by_role("button", name="Enregistrer l'absence").click()
    await page.wait_for_url("**/absences/*")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Absence du Dr Claire Martin")
    await shot(page, "practice-absence")
    await page.goto(base)
    await page.get_by_role("link", name="Ajouter un créneau").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Ajouter un créneau — Dr Claire Martin"
    )
    await page.get_by_role("link", name="Médecin traitant").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Patients proposés comme médecin traitant"
    )
    await shot(page, "practice-mt-proposal")
    await page.get_by_role("button", name="Accepter : rattacher au Dr Martin").click()
    await expect(page.get_by_role("status")).to_have_text("Patient rattaché au Dr Martin.")
    row = page.get_by_role("row", name="LEMOINE Jeanne")
    assert "Dr Claire Martin" in await row.inner_text()
    await shot(page, "practice-mt-attached")
