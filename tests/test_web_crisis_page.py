"""The one « Crise » page of the menu (/coordination/crise): besides the running crisis or
the declaration form, the plan in force (its last review, the day the next falls due, links to
read, print and write it) and the past crises with their reports; the admin (the ARS) chooses
a territory, then declares and ends there like its coordinator."""

from __future__ import annotations

import re
from datetime import date
from html import unescape

from tests.test_crisis_surge import MONDAY, volunteer, write_plan
from tests.test_web_crisis import csrf
from tests.test_web_dashboard import sign_in


def squeeze(html: str) -> str:
    return " ".join(unescape(html).split())


async def test_the_menu_has_one_crisis_entry(client, territory, admin):
    for key in (territory.coordinator, admin):
        await sign_in(client, key, "/coordination/annuaire")
        menu = (await client.get("/coordination/annuaire")).text
        assert re.findall(r'<a href="(/coordination/[^"]*crise[^"]*)">', menu) == [
            "/coordination/crise"
        ]


async def test_the_page_shows_the_plan_its_review_and_its_links(client, territory, session, clock):
    clock.set(MONDAY)  # 4 March 2030; the plan was reviewed on 15 January 2030
    plan = await write_plan(session, territory.id, [volunteer(territory.practitioner_id)])
    await session.commit()
    await sign_in(client, territory.coordinator, "/coordination/crise")
    page = squeeze((await client.get("/coordination/crise")).text)
    assert "Version 1 en vigueur, revue le 15/01/2030 ; prochaine revue à faire le 15/01/2031" in (
        page
    )
    for href in ("/coordination/crise/plan", "/coordination/crise/plan/modifier",
                 f"/coordination/crise/plan/versions/{plan.id}/plan.json"):  # fmt: skip
        assert f'href="{href}"' in page, href
    assert "Imprimer le plan ou l'enregistrer en PDF" in page
    assert "Aucune crise terminée sur ce territoire." in page


async def test_a_review_fallen_due_is_marked_on_the_page(client, territory, session, clock):
    clock.set(MONDAY)
    plan = await write_plan(session, territory.id, [])
    plan.reviewed_on = date(2029, 3, 1)
    await session.commit()
    await sign_in(client, territory.coordinator, "/coordination/crise")
    page = squeeze((await client.get("/coordination/crise")).text)
    assert "<strong>à faire depuis le 01/03/2030</strong>" in page


async def test_without_a_plan_the_page_offers_to_write_one(client, territory):
    await sign_in(client, territory.coordinator, "/coordination/crise")
    page = squeeze((await client.get("/coordination/crise")).text)
    assert "Le territoire n'a pas encore de plan de crise." in page
    assert '<a href="/coordination/crise/plan/modifier">Rédiger le plan</a>' in page


async def test_the_admin_chooses_the_territory_declares_and_ends(
    client, territory, other_territory, admin, session, clock
):
    clock.set(MONDAY)
    await write_plan(session, territory.id, [volunteer(territory.practitioner_id)])
    await session.commit()
    await sign_in(client, admin, "/coordination/crise")
    choose = await client.get("/coordination/crise")
    assert choose.status_code == 200 and "Crise : choisir le territoire" in choose.text
    assert f'<option value="{territory.id}">CPTS Test</option>' in choose.text
    here = f"/coordination/crise?territoire={territory.id}"
    page = await client.get(here)
    assert "Territoire : CPTS Test" in page.text and "Déclarer une crise" in page.text
    assert f'action="{here}"' in page.text
    form = {"csrf": csrf(page.text), "kind": "cyber_attack", "title": "Cyberattaque du CH",
            "started_at": "2030-03-04T08:00", "expected_end_at": "2030-03-08T20:00",
            "communes": ""}  # fmt: skip
    r = await client.post(here, data=form)
    assert r.status_code == 303 and r.headers["location"] == here, r.text
    listed = (await client.get("/v1/crises", headers=territory.coordinator)).json()["items"]
    assert [(c["title"], c["volunteers_called"]) for c in listed] == [("Cyberattaque du CH", 1)]
    assert (await client.get("/v1/crises", headers=other_territory.coordinator)).json()[
        "items"
    ] == []
    shown = await client.get(here)
    assert "Cyberattaque du CH" in shown.text and "Terminer la crise" in shown.text
    end = f"/coordination/crise/fin?territoire={territory.id}"
    asked = await client.post(end, data={"csrf": csrf(shown.text)})
    assert asked.status_code == 200 and f'action="{end}"' in asked.text.replace("&amp;", "&")
    r = await client.post(end, data={"csrf": csrf(shown.text), "confirme": "oui"})
    assert r.status_code == 303 and r.headers["location"] == here
    assert not (await client.get(f"/v1/crises?territory_id={territory.id}", headers=admin)).json()[
        "items"
    ][0]["running"]


async def test_an_unknown_territory_is_a_french_404_and_other_roles_are_refused(
    client, territory, admin
):
    await sign_in(client, admin, "/coordination/crise")
    for value in ("pas-un-uuid", "00000000-0000-0000-0000-000000000000"):
        r = await client.get(f"/coordination/crise?territoire={value}")
        assert r.status_code == 404 and "Territoire introuvable" in r.text
    for key in (territory.dashboard, territory.practice, territory.regulator):
        await sign_in(client, key, "/accueil")
        r = await client.get("/coordination/crise")
        assert r.status_code == 403 and "pas ouverte à votre accès" in r.text
