"""The practice, regulator and coordinator pages in a real headless Chromium (Debian's),
against the service served by uvicorn and real PostgreSQL. Screenshots in test-artifacts/."""

from __future__ import annotations

from datetime import date

from playwright.async_api import expect

from tests.test_browser_dashboard import ARTIFACTS, browser, served  # noqa: F401 - fixtures
from tests.test_web_pages import publish_all_day


async def signed_in_page(browser, served, key_header, viewport=None):  # noqa: F811
    context = await browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{served}/accueil")
    await page.get_by_label("Clé d'accès").fill(key_header["Authorization"].removeprefix("Bearer "))
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_load_state()
    return page


async def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def test_practice_publishes_a_rule_and_sees_the_slots(served, browser, territory):  # noqa: F811
    page = await signed_in_page(browser, served, territory.practice)
    assert page.url == f"{served}/cabinet"
    assert await page.get_by_role("heading", level=1).inner_text() == (
        "Agenda — Maison de santé d'Aurillac"
    )
    await page.get_by_role("link", name="Ajouter une règle").click()
    for name in ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"):
        await page.get_by_label(name, exact=True).check()
    await page.get_by_label("Début").fill("08:00")
    await page.get_by_label("Fin", exact=True).fill("20:00")
    await page.get_by_label("Durée d'un créneau (minutes)").fill("30")
    await page.get_by_label("À partir du").fill(date.today().isoformat())
    await page.get_by_role("button", name="Prévisualiser les créneaux").click()
    preview = page.get_by_role("heading", name="Aperçu")
    assert "créneaux sur les 14 prochains jours" in await preview.inner_text()
    await shot(page, "practice-rule-preview")
    await page.get_by_role("button", name="Publier la règle").click()
    await page.wait_for_url(f"{served}/cabinet/medecins/{territory.practitioner_id}")
    status = await page.get_by_role("status").inner_text()
    assert status.startswith("Règle publiée :")
    tomorrow = date.fromordinal(date.today().toordinal() + 1)
    await page.goto(
        f"{page.url}?semaine={tomorrow}"
    )  # a week with slots to come, whatever the hour
    free = page.locator(".slot.st-free")
    assert await free.count() > 0
    assert await free.first.locator(".status").inner_text() == "Libre"  # in words, not colour
    await shot(page, "practice-agenda")
    phone = await signed_in_page(
        browser, served, territory.practice, viewport={"width": 390, "height": 844}
    )
    assert await phone.evaluate("document.documentElement.scrollWidth") <= 390
    await shot(phone, "practice-agenda-phone")


async def fill_patient(page, family: str = "Lemoine") -> None:
    await page.get_by_label("Nom", exact=True).fill(family)
    await page.get_by_label("Prénom").fill("Jeanne")
    await page.get_by_label("Date de naissance").fill("1948-05-02")
    await page.get_by_label("Téléphone").fill("06 12 34 56 78")


async def test_regulator_finds_and_books_with_the_keyboard(served, browser, client, territory):  # noqa: F811
    await publish_all_day(client, territory)
    page = await signed_in_page(browser, served, territory.regulator)
    assert page.url == f"{served}/regulation"
    await expect(page.get_by_label("Commune", exact=True)).to_be_focused()  # ready to type
    await page.get_by_label("Commune", exact=True).fill("Aurillac")
    await page.get_by_label("Modalité").select_option("cabinet")
    await page.get_by_role("button", name="Rechercher").press("Enter")
    await page.wait_for_url("**/regulation?commune=Aurillac*")
    heading = await page.locator("#resultats").inner_text()
    assert "disponibles, distance à partir du centre de" in heading
    radios = page.get_by_role("radio")
    await expect(page.locator("#resultats")).to_be_focused()  # the page lands on the results
    await page.keyboard.press("Tab")
    await expect(radios.first).to_be_focused()  # one Tab to the first slot
    await page.keyboard.press("Space")
    await page.keyboard.press("ArrowDown")  # a radio group moves with the arrows
    assert await radios.nth(1).is_checked()
    chosen = await radios.nth(1).get_attribute("value")
    await fill_patient(page)
    await page.get_by_label("N° de dossier SAS (facultatif)").fill("SAS15-2026-000123")
    await page.get_by_label("Motif (facultatif)").fill("Fièvre depuis 3 jours")
    await page.get_by_label("Motif (facultatif)").press("Enter")  # submits the form
    await page.wait_for_url("**/rendez-vous/*")
    assert await page.get_by_role("status").inner_text() == "Rendez-vous réservé."
    body = await page.locator("main").inner_text()
    assert "LEMOINE Jeanne" in body and "SAS15-2026-000123" in body
    await shot(page, "regulator-booked")
    await page.goto(f"{served}/regulation?commune=15014&modalite=cabinet")
    assert await page.locator(f"input[value='{chosen}']").count() == 0  # no longer offered


async def test_second_regulator_sees_the_slot_was_just_taken(served, browser, client, territory):  # noqa: F811
    await publish_all_day(client, territory)
    first = await signed_in_page(browser, served, territory.regulator)
    second = await signed_in_page(browser, served, territory.regulator)
    for page in (first, second):
        await page.goto(f"{served}/regulation?commune=15014&rayon=30")
        await page.get_by_role("radio").first.check()
        await fill_patient(page, "Lemoine" if page is first else "Bernard")
    await first.get_by_role("button", name="Réserver ce créneau").click()
    await first.wait_for_url("**/rendez-vous/*")
    await second.get_by_role("button", name="Réserver ce créneau").click()
    alert = second.get_by_role("alert")
    assert "Ce créneau vient d'être pris par un autre régulateur." in await alert.inner_text()
    assert await second.get_by_label("Nom", exact=True).input_value() == "Bernard"
    assert await second.get_by_role("radio").count() > 0  # the next options
    await shot(second, "regulator-just-taken")


async def test_coordinator_attaches_an_mt_patient(served, browser, client, territory):  # noqa: F811
    r = await client.post(
        "/v1/mt-requests",
        json={"patient": {"family_name": "Lemoine", "given_name": "Jeanne",
                          "birth_date": "1948-05-02", "phone": "0612345678",
                          "commune_insee": "15014"},
              "ald": True, "precarity": False, "source": "cpts"},
        headers={**territory.coordinator, "Idempotency-Key": "b-mt"},
    )  # fmt: skip
    assert r.status_code == 201
    r = await client.put(
        f"/v1/practitioners/{territory.practitioner_id}/mt-capacity",
        json={"mt_capacity": 5},
        headers=territory.coordinator,
    )
    assert r.status_code == 200
    page = await signed_in_page(browser, served, territory.coordinator)
    assert page.url == f"{served}/coordination"
    await shot(page, "coordinator-queue")
    await page.get_by_role("link", name="LEMOINE Jeanne").click()
    await page.get_by_role("button", name="Proposer le Dr Martin").click()
    assert await page.get_by_role("status").inner_text() == "Médecin proposé au patient."
    await page.get_by_role("button", name="Accepté : rattacher le patient").click()
    assert await page.get_by_role("status").inner_text() == (
        "Patient rattaché à son médecin traitant."
    )
    assert "Rattaché" in await page.get_by_role("heading", level=1).inner_text()
    await shot(page, "coordinator-attached")
    await page.get_by_role("link", name="Capacités des médecins").click()
    row = page.get_by_role("row", name="Dr Claire Martin")
    assert (await row.inner_text()).split("\t")[1:3] == ["1", "4"]
    await shot(page, "coordinator-capacities")
