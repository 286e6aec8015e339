"""Accessibility audit (RGAA / WCAG 2.1 AA) with axe-core in Chromium: every page family,
signed in as each role, with and without errors shown, has no violation of serious or
critical impact."""

from __future__ import annotations

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import expect

from tests.conftest import Territory, practitioner_body
from tests.test_browser_dashboard import browser, served  # noqa: F401 - fixtures
from tests.test_browser_pages import signed_in_page
from tests.test_slot_search import add_slot
from tests.test_web_pages import publish_all_day

WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


async def serious_violations(page) -> list[str]:
    results = await Axe().run(page, options=WCAG_AA)
    return [
        f"{page.url}: {v['id']} ({v['impact']}) {v['help']}: "
        + "; ".join(n["target"][0] for n in v["nodes"][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def audit(page, served: str, paths: list[str]) -> list[str]:  # noqa: F811
    found: list[str] = []
    for path in paths:
        await page.goto(f"{served}{path}")
        found += await serious_violations(page)
    return found


async def submit_empty(page, served: str, path: str, button: str) -> list[str]:  # noqa: F811
    """The page's form sent empty: the errors it shows must be accessible too."""
    await page.goto(f"{served}{path}")
    await page.get_by_role("button", name=button).click()
    await page.wait_for_load_state()
    return await serious_violations(page)


@pytest.fixture
async def with_slots(client: httpx.AsyncClient, territory: Territory) -> Territory:
    await publish_all_day(client, territory)
    return territory


async def test_sign_in_pages_pass_the_audit(served, browser):  # noqa: F811
    page = await (await browser.new_context()).new_page()
    assert await audit(page, served, ["/connexion", "/agenda/connexion", "/nulle-part"]) == []


async def test_public_mt_pages_pass_the_audit(served, browser, territory):  # noqa: F811
    page = await (await browser.new_context()).new_page()
    form = f"/medecin-traitant/{territory.id}"
    found = await audit(page, served, ["/medecin-traitant", form, "/medecin-traitant/suivi"])
    found += await submit_empty(page, served, form, "Envoyer la demande")
    found += await submit_empty(
        page, served, "/medecin-traitant/suivi", "Voir où en est la demande"
    )
    assert found == []


async def test_criteria_to_check_pass_the_audit(served, browser, client, territory):  # noqa: F811
    from tests.test_mt_requests import gp_with_capacity, register
    from tests.test_mt_self_registration import form

    r = await client.post(f"/medecin-traitant/{territory.id}", data=form(ald="true"))
    assert r.status_code == 200
    [item] = (await client.get("/v1/mt-requests", headers=territory.coordinator)).json()["items"]
    # A request proposed once and declined, proposed again: its history and the decline form.
    gp = await gp_with_capacity(client, territory)
    rid = (await register(client, territory)).json()["id"]
    for answer in ("decline", None):
        r = await client.post(
            f"/v1/mt-requests/{rid}/proposals",
            json={"practitioner_id": gp},
            headers=territory.coordinator,
        )
        assert r.status_code == 200, r.text
        if answer:
            r = await client.post(
                f"/v1/mt-requests/{rid}/decline",
                json={"reason": "trop loin", "declined_by": "patient"},
                headers=territory.coordinator,
            )
            assert r.status_code == 200, r.text
    page = await signed_in_page(browser, served, territory.coordinator)
    paths = ["/coordination", f"/coordination/mt/{item['id']}", f"/coordination/mt/{rid}"]
    assert await audit(page, served, paths) == []


async def test_practice_pages_pass_the_audit(served, browser, with_slots, client):  # noqa: F811
    t = with_slots
    r = await client.post(
        "/v1/practitioners", json=practitioner_body(t.practice_id), headers=t.coordinator
    )
    await add_slot(client, t, r.json()["id"], 3, visibility="cpts")
    page = await signed_in_page(browser, served, t.practice)
    gp = f"/cabinet/medecins/{t.practitioner_id}"
    paths = ["/cabinet", gp, f"{gp}/regles/nouvelle", f"{gp}/creneau", f"{gp}/absence"]
    paths += ["/cabinet/medecin-traitant", "/rendez-vous", "/cpts", "/cpts?rayon=30"]
    found = await audit(page, served, paths)
    found += await submit_empty(page, served, f"{gp}/regles/nouvelle", "Prévisualiser les créneaux")
    found += await submit_empty(page, served, "/cpts?rayon=30", "Réserver ce créneau")
    assert found == []


async def test_regulator_pages_pass_the_audit(served, browser, with_slots):  # noqa: F811
    page = await signed_in_page(browser, served, with_slots.regulator)
    found = await audit(page, served, ["/regulation", "/regulation/surnumeraire", "/rendez-vous"])
    assert found == []


async def test_commune_choices_pass_the_audit(served, browser, with_slots):  # noqa: F811
    page = await signed_in_page(browser, served, with_slots.regulator)
    paths = ["/regulation?commune=Saint-Georges&rayon=30", "/regulation?commune=15000&rayon=30"]
    paths += ["/regulation?commune=Zzyzx&rayon=30", "/regulation?commune=15000&rayon=commune"]
    found = await audit(page, served, paths)
    public = await (await browser.new_context()).new_page()
    await public.goto(f"{served}/medecin-traitant/{with_slots.id}")
    await public.get_by_label("Nom", exact=True).fill("Lemoine")
    await public.get_by_label("Prénom").fill("Jeanne")
    await public.get_by_label("Date de naissance").fill("1948-05-02")
    await public.get_by_label("Téléphone").fill("06 12 34 56 78")
    await public.get_by_label("Commune du patient").fill("15000")
    await public.locator("#consentement").check()
    await public.get_by_role("button", name="Envoyer la demande").click()
    await public.wait_for_load_state()
    ytrac_label = "Ytrac (15267) — codes postaux 15000, 15130, département 15"
    ytrac = public.get_by_role("radio", name=ytrac_label)
    await expect(ytrac).to_be_visible()
    found += await serious_violations(public)
    assert found == []


async def test_coordinator_pages_pass_the_audit(served, browser, with_slots):  # noqa: F811
    t = with_slots
    page = await signed_in_page(browser, served, t.coordinator)
    paths = ["/coordination", "/coordination/mt/nouvelle", "/coordination/capacites"]
    paths += ["/coordination/annuaire", "/coordination/cles", "/coordination/cabinets/nouveau"]
    paths += [f"/coordination/cabinets/{t.practice_id}"]
    paths += [f"/coordination/medecins/{t.practitioner_id}", "/dashboard", "/rendez-vous"]
    paths += ["/cpts", "/coordination/import-cpam", "/coordination/carences"]
    found = await audit(page, served, paths)
    found += await submit_empty(page, served, "/coordination/mt/nouvelle", "Inscrire")
    # The import's preview and errors: tests/test_browser_mt_import.py audits each step.
    found += await submit_empty(page, served, "/coordination/import-cpam", "Lire le fichier")
    assert found == []


async def test_dashboard_pages_pass_the_audit(served, browser, with_slots):  # noqa: F811
    page = await signed_in_page(browser, served, with_slots.dashboard)
    assert await audit(page, served, ["/dashboard"]) == []


async def test_the_audit_finds_a_field_without_a_label(served, browser):  # noqa: F811
    """The audit itself works: a form field whose label is removed is a critical violation."""
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{served}/connexion")
    await page.evaluate("document.querySelectorAll('label').forEach(l => l.remove())")
    found = await serious_violations(page)
    assert any(" label (critical)" in v for v in found), found
