"""The crisis plan in Chromium: written and saved with the keyboard alone (lines added on
the way), printed to PDF without the menu, one part a page; no serious or critical axe
violation on the plan's pages, errors shown included."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import expect

from tests.test_browser_accessibility import serious_violations
from tests.test_browser_dashboard import browser, served  # noqa: F401 - fixtures
from tests.test_browser_keyboard import FOCUSED, signed_in_page, tab_and_fill

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PLAN = "/coordination/crise/plan"


async def test_write_and_save_the_plan_with_the_keyboard(
    served,  # noqa: F811
    browser,  # noqa: F811
    territory,
    client,
):
    page = await signed_in_page(browser, served, territory.coordinator)
    # No plan yet: the reminder on the coordinator's home leads to the form.
    await expect(page.get_by_text("Aucun plan de gestion des situations")).to_be_visible()
    await page.get_by_role("link", name="Rédiger le plan de crise").focus()
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    assert page.url.endswith("/coordination/crise/plan/modifier")
    await tab_and_fill(
        page,
        {
            "reviewed_on": "01152026",  # this Chromium orders a date input mm/dd/yyyy
            "contacts-0-role": "ARS",
            "contacts-0-name": "Astreinte ARS",
            "contacts-0-phone": "04 73 74 49 00",
        },
        "Ajouter des lignes (contacts)",
        presses=40,
    )
    # Shown again with more blank rows, the first of them focused; what was typed is kept.
    await expect(page.locator("#contacts-5-role")).to_be_attached()
    await expect(page.locator("#contacts-1-role")).to_be_focused()
    assert (await page.evaluate(FOCUSED))[0] == "contacts-1-role"
    await expect(page.locator("#contacts-0-name")).to_have_value("Astreinte ARS")
    await page.keyboard.type("SAS")
    await tab_and_fill(
        page,
        {
            "contacts-1-name": "SAS 15",
            "contacts-1-phone": "0471000000",
            "volunteers-0-practitioner_id": "Martin",
            "volunteers-0-crisis_overbooking_cap": "6",
            "volunteers-0-pledges-0-modality": "Visite",
            "volunteers-0-pledges-0-start_time": "1800",
            "volunteers-0-pledges-0-end_time": "1930",  # (Chromium refuses "2000" typed)
            "volunteers-0-pledges-0-weekdays": " ",
            "volunteers-0-pledges-0-weekdays-3": " ",
            "sites-0-name": "Salle des fêtes",
            "sites-0-address": "1 place du Square",
            "sites-0-commune_insee": "15014",
            "steps-0-title": "Prévenir l'ARS",
        },
        "Enregistrer la nouvelle version",
        presses=250,
    )
    await page.wait_for_url(f"**{PLAN}")
    await expect(page.get_by_role("status")).to_have_text("Version 1 du plan enregistrée.")
    await expect(
        page.get_by_text("Visite à domicile : lundi, mercredi, 18:00–19:30")
    ).to_be_visible()
    await expect(page.get_by_text("Aucun plan de gestion des situations")).to_have_count(0)
    plan = (await client.get("/v1/crisis-plans/current", headers=territory.coordinator)).json()
    assert plan["reviewed_on"] == "2026-01-15"
    assert [c["name"] for c in plan["contacts"]] == ["Astreinte ARS", "SAS 15"]
    [volunteer] = plan["volunteers"]
    assert volunteer["practitioner_id"] == territory.practitioner_id
    assert volunteer["crisis_overbooking_cap"] == 6
    pledges = [(p["modality"], p["weekdays"], p["start_time"], p["end_time"])
               for p in volunteer["pledges"]]  # fmt: skip
    assert pledges == [("visite", [1, 3], "18:00:00", "19:30:00")]

    # Printed: no menu, no buttons; each part on its own page; rows never split.
    await page.emulate_media(media="print")
    await expect(page.get_by_role("navigation", name="Menu principal")).to_be_hidden()
    await expect(page.get_by_role("link", name=re.compile("Modifier le plan"))).to_be_hidden()
    breaks = await page.evaluate(
        """() => [...document.querySelectorAll('.plan-section')].map(
             s => getComputedStyle(s).breakBefore)"""
    )
    assert breaks == ["auto", "page", "page", "page"]
    assert await page.evaluate("getComputedStyle(document.querySelector('tr')).breakInside") == (
        "avoid"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    pdf = await page.pdf(path=ARTIFACTS / "crisis-plan.pdf", format="A4")
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 4  # one page for each part
    await page.screenshot(path=ARTIFACTS / "crisis-plan-print.png", full_page=True)
    await page.emulate_media(media="screen")
    await page.screenshot(path=ARTIFACTS / "crisis-plan.png", full_page=True)


async def test_the_plan_pages_pass_the_audit(served, browser, territory, client):  # noqa: F811
    from tests.test_crisis_plan import plan_body

    first = await client.post(
        "/v1/crisis-plans",
        json=plan_body([territory.practitioner_id], reviewed_on="2024-02-29"),
        headers=territory.coordinator,
    )
    await client.post("/v1/crisis-plans", json=plan_body(), headers=territory.coordinator)
    page = await signed_in_page(browser, served, territory.coordinator)
    found = await serious_violations(page)  # the home, with the review reminder
    await expect(page.get_by_text("doit être revu")).to_have_count(0)
    for path in (PLAN, f"{PLAN}/versions/{first.json()['id']}", f"{PLAN}/modifier"):
        await page.goto(f"{served}{path}")
        found += await serious_violations(page)
    # Errors shown: each named in the summary, linked to a visible input.
    await page.goto(f"{served}{PLAN}/modifier")
    await page.locator("#reviewed_on").fill("")
    await page.locator("#contacts-0-phone").fill("12")
    await page.get_by_role("button", name="Enregistrer la nouvelle version").click()
    await page.wait_for_load_state()
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("Contact 1 — Téléphone")
    found += await serious_violations(page)
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "crisis-plan-form-errors.png", full_page=True)
    await alert.get_by_role("link", name=re.compile("Contact 1 — Téléphone")).click()
    await expect(page.locator("#contacts-0-phone")).to_be_focused()
    await expect(page.locator("#contacts-0-phone")).to_be_visible()
    # Printed, too.
    await page.goto(f"{served}{PLAN}")
    await page.emulate_media(media="print")
    found += await serious_violations(page)
    assert found == []
