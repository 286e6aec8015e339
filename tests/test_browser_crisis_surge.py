"""Surge mode in Chromium: the coordinator declares a crisis; the called practice follows its
link, signs in and opens its pledged capacity in one click; the regulator sees the banner and
the crisis slots first. Every page passes the accessibility audit (axe, WCAG AA)."""

from __future__ import annotations

from playwright.async_api import expect
from sqlalchemy import func, select

from app.outbox.models import OutboxMessage
from app.scheduling.models import Slot
from tests.test_browser_accessibility import audit, serious_violations
from tests.test_browser_dashboard import browser, served  # noqa: F401 - fixtures
from tests.test_browser_pages import signed_in_page
from tests.test_call_links import link_path
from tests.test_crisis_surge import EMAIL, write_plan
from tests.test_slot_search import add_slot

# Every day, 08:00-20:00, by the hour: crisis slots in any next 48 hours.
EVERY_DAY = {
    "modality": "cabinet",
    "weekdays": [1, 2, 3, 4, 5, 6, 7],
    "start_time": "08:00",
    "end_time": "20:00",
    "slot_minutes": 60,
}


async def test_declare_open_and_find_crisis_capacity_first(
    served,  # noqa: F811
    browser,  # noqa: F811
    client,
    territory,
    session,
):
    await client.post("/v1/webhooks", json={"url": "https://cabinet.example/hooks"},
                      headers=territory.practice)  # fmt: skip
    await write_plan(session, territory.id, [
        {"practitioner_id": territory.practitioner_id, "email": EMAIL, "pledges": [EVERY_DAY]}
    ])  # fmt: skip
    await session.commit()
    # The coordinator declares.
    coordinator = await signed_in_page(browser, served, territory.coordinator)
    await coordinator.goto(f"{served}/coordination/crise")
    assert await serious_violations(coordinator) == []
    await coordinator.get_by_label("Type de crise").select_option("epidemic")
    await coordinator.get_by_label("Intitulé").fill("Grippe saisonnière")
    await coordinator.get_by_label("Communes concernées (facultatif)").fill("Aurillac")
    await coordinator.get_by_role("button", name="Déclarer la crise").click()
    await coordinator.wait_for_load_state()
    await expect(
        coordinator.get_by_text("Crise déclarée : 1 volontaire(s) appelé(s)")
    ).to_be_visible()
    await expect(coordinator.get_by_role("cell", name="pas encore")).to_be_visible()
    assert await serious_violations(coordinator) == []
    # An ordinary slot an hour from now (a crisis slot over it is skipped): found after
    # every crisis slot.
    await add_slot(client, territory, territory.practitioner_id, 1, minutes=15)
    # The practice follows its link, signs in, opens its capacity.
    hook = await session.scalar(
        select(OutboxMessage).where(OutboxMessage.event_type == "crisis.declared")
    )
    assert hook is not None
    link = link_path(hook.payload["data"]["call"]["link"])
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    practice = await context.new_page()
    await practice.goto(f"{served}{link}")
    await practice.get_by_label("Clé d'accès").fill(
        territory.practice["Authorization"].removeprefix("Bearer ")
    )
    await practice.get_by_role("button", name="Se connecter").click()
    await practice.wait_for_load_state()
    await expect(
        practice.get_by_role("heading", name="Appel de crise : Grippe saisonnière")
    ).to_be_visible()
    assert await practice.get_by_label("Début (HH:MM)").input_value() == "08:00"
    assert await serious_violations(practice) == []
    await practice.get_by_role("button", name="Ouvrir ces créneaux").click()
    await practice.wait_for_load_state()
    await expect(practice.get_by_text("Capacité de crise ouverte")).to_be_visible()
    # While the crisis runs, the one-off slot form offers the box "capacité de crise".
    slot_form = f"/cabinet/medecins/{territory.practitioner_id}/creneau"
    assert await audit(practice, served, [slot_form]) == []
    await expect(practice.get_by_label("Capacité de crise", exact=False)).to_be_visible()
    opened = await session.scalar(
        select(func.count()).select_from(Slot).where(Slot.crisis_id.is_not(None))
    )
    assert opened and opened > 0
    regulator = await signed_in_page(browser, served, territory.regulator)
    await regulator.goto(f"{served}/regulation?commune=15014&rayon=20")
    await expect(
        regulator.get_by_role(
            "heading", name="Situation sanitaire exceptionnelle en cours : Grippe saisonnière"
        )
    ).to_be_visible()
    labels = await regulator.locator(".slot-choice label").all_inner_texts()
    flags = ["Crise" in text for text in labels]
    assert flags[0] and not flags[-1] and flags == sorted(flags, reverse=True)
    assert await serious_violations(regulator) == []
    # The end, asked for first: the confirmation page passes the audit too.
    await coordinator.goto(f"{served}/coordination/crise")
    await coordinator.get_by_role("button", name="Terminer la crise").click()
    await coordinator.wait_for_load_state()
    await expect(coordinator.get_by_role("heading", name="Terminer la crise ?")).to_be_visible()
    assert await serious_violations(coordinator) == []
    await coordinator.get_by_role("button", name="Terminer la crise").click()
    await coordinator.wait_for_load_state()
    await expect(coordinator.get_by_text("Crise terminée :")).to_be_visible()
    assert (
        await audit(coordinator, served, ["/coordination/crise", "/cabinet/crise?jeton=rien"]) == []
    )
