"""The crisis pages: the coordinator declares (communes by name) and ends (after a
confirmation page) at /coordination/crise and sees who was called and what they opened; the
call's signed link (/cabinet/crise?jeton=…) leads the GP's practice to its pledge, prefilled,
and one button opens it; tampered, expired, slot-call, other-practice and ended-crisis links
get a French page; the regulator's search shows a banner and the crisis slots first."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import func, select

from app.crisis import links
from app.crisis.models import CrisisCall
from app.outbox.models import OutboxMessage
from app.scheduling.models import Slot
from app.unmet_demand import call_links
from tests.test_call_links import link_path
from tests.test_crisis_surge import EMAIL, MONDAY, declare, volunteer, write_plan
from tests.test_web_dashboard import sign_in


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


async def declared_link(client, t, session, clock) -> str:
    """A crisis declared under a plan naming the territory's GP; its call's link."""
    clock.set(MONDAY)
    await client.post("/v1/webhooks", json={"url": "https://cabinet.example/hooks"},
                      headers=t.practice)  # fmt: skip
    await write_plan(session, t.id, [volunteer(t.practitioner_id, email=EMAIL)])
    r = await declare(client, t)
    assert r.status_code == 201, r.text
    hook = await session.scalar(
        select(OutboxMessage).where(OutboxMessage.event_type == "crisis.declared")
    )
    assert hook is not None
    return str(hook.payload["data"]["call"]["link"])


async def test_the_link_shows_the_pledge_and_one_button_opens_it(client, territory, session,
                                                                 clock):  # fmt: skip
    link = await declared_link(client, territory, session, clock)
    await sign_in(client, territory.practice, "/cabinet")
    r = await client.get(link_path(link))
    assert r.status_code == 200, r.text
    page = r.text
    assert "Grippe saisonnière" in page and "épidémie" in page
    assert 'value="14:00"' in page and 'value="16:00"' in page and 'value="30"' in page
    assert page.count("Ouvrir ces créneaux") == 1
    token = unquote(parse_qs(urlsplit(link).query)["jeton"][0])
    # Edited hours: 14:00-15:00 instead of 16:00; Monday to Wednesday: 6 slots.
    form = {"csrf": csrf(page), "jeton": token, "p0.modality": "teleconsultation",
            "p0.start_time": "14:00", "p0.end_time": "15:00", "p0.slot_minutes": "30"}  # fmt: skip
    r = await client.post(links.PATH, data={**form, "p0.weekdays": ["1", "2", "3", "4", "5"]})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/cabinet/medecins/{territory.practitioner_id}"
    shown = await client.get(r.headers["location"])
    assert "Capacité de crise ouverte : 6 créneau(x)" in shown.text
    slots = list(await session.scalars(select(Slot).where(Slot.crisis_id.is_not(None))))
    assert len(slots) == 6 and {s.modality for s in slots} == {"teleconsultation"}
    call = await session.scalar(select(CrisisCall))
    await session.refresh(call)
    assert call.slots_opened == 6 and call.opened_at is not None
    # Opened: the link now says so, with no button.
    again = await client.get(link_path(link))
    assert "est ouverte depuis" in again.text and "Ouvrir ces créneaux" not in again.text


async def test_errors_in_the_edited_hours_are_summarised(client, territory, session, clock):
    link = await declared_link(client, territory, session, clock)
    await sign_in(client, territory.practice, "/cabinet")
    page = (await client.get(link_path(link))).text
    token = unquote(parse_qs(urlsplit(link).query)["jeton"][0])
    form = {"csrf": csrf(page), "jeton": token, "p0.modality": "cabinet",
            "p0.start_time": "16:00", "p0.end_time": "15:00", "p0.slot_minutes": "30"}  # fmt: skip
    r = await client.post(links.PATH, data=form)
    assert r.status_code == 422
    assert 'href="#p0-weekdays"' in r.text and 'id="p0-weekdays"' in r.text
    assert "Cochez au moins un jour" in r.text
    opened = select(func.count()).where(Slot.practitioner_id == territory.practitioner_id)
    assert await session.scalar(opened) == 0


async def test_a_link_opened_signed_out_goes_to_sign_in_and_back(client, territory, session,
                                                                clock):  # fmt: skip
    link = await declared_link(client, territory, session, clock)
    r = await client.get(link_path(link))
    assert r.status_code == 303
    assert r.headers["location"].startswith("/connexion?next=/cabinet/crise")


async def test_refused_links_get_a_french_page(client, territory, other_territory, session,
                                              clock):  # fmt: skip
    link = await declared_link(client, territory, session, clock)
    token = unquote(parse_qs(urlsplit(link).query)["jeton"][0])
    call_id, gp, expires, mac = token.split(".")
    await sign_in(client, territory.practice, "/cabinet")
    key = call_links.secret(client._transport.app.state.settings)
    slot_call_token = call_links.token(key, uuid.UUID(call_id), uuid.UUID(gp), MONDAY)
    for bad in (
        f"{call_id}.{uuid.uuid4()}.{expires}.{mac}",
        f"{call_id}.{gp}.{int(expires) + 86400}.{mac}",
        slot_call_token,  # signed, but for a call for slots
        "nonsense",
    ):
        r = await client.get(links.PATH, params={"jeton": bad})
        assert r.status_code == 400, bad
        assert "Lien invalide" in r.text
    clock.set(MONDAY + timedelta(days=3))  # past the expected end
    r = await client.get(link_path(link))
    assert r.status_code == 410 and "Lien expiré" in r.text


async def test_another_practice_and_an_ended_crisis_are_refused(
    client, territory, other_territory, session, clock
):
    link = await declared_link(client, territory, session, clock)
    await sign_in(client, other_territory.practice, "/cabinet")
    r = await client.get(link_path(link))
    assert r.status_code == 403 and "autre cabinet" in r.text
    crisis_id = (await client.get("/v1/crises", headers=territory.coordinator)).json()["items"][0][
        "id"
    ]
    await client.post(f"/v1/crises/{crisis_id}/end", headers=territory.coordinator)
    await sign_in(client, territory.practice, "/cabinet")
    r = await client.get(link_path(link))
    assert r.status_code == 410 and "Crise terminée" in r.text and "est terminée" in r.text


async def test_the_coordinator_declares_sees_the_calls_and_ends(client, territory, session, clock):
    clock.set(MONDAY)
    await write_plan(session, territory.id, [volunteer(territory.practitioner_id, email=EMAIL)])
    await sign_in(client, territory.coordinator, "/coordination/crise")
    page = await client.get("/coordination/crise")
    assert page.status_code == 200
    assert "Déclarer une crise" in page.text and "cyberattaque" in page.text
    form = {"csrf": csrf(page.text), "kind": "heatwave", "title": "Canicule",
            "started_at": "2030-03-04T08:00", "expected_end_at": "2030-03-08T20:00",
            "communes": "Aurillac, Ytrac"}  # fmt: skip
    r = await client.post("/coordination/crise", data=form)
    assert r.status_code == 303, r.text
    shown = await client.get("/coordination/crise")
    assert "Crise déclarée : 1 volontaire(s) appelé(s)" in shown.text
    assert "Aurillac, Ytrac" in shown.text and "Canicule" in shown.text
    assert "Dr Claire Martin" in shown.text and "en cours d&#39;envoi" in shown.text
    assert "pas encore" in shown.text
    r = await client.post("/coordination/crise/fin", data={"csrf": csrf(shown.text)})
    assert r.status_code == 200 and "Terminer la crise ?" in r.text  # asks first
    assert (await client.get("/v1/crises", headers=territory.coordinator)).json()["items"][0][
        "running"
    ]
    r = await client.post(
        "/coordination/crise/fin", data={"csrf": csrf(shown.text), "confirme": "oui"}
    )
    assert r.status_code == 303
    ended = await client.get("/coordination/crise")
    assert "Crise terminée : 0 créneau(x)" in ended.text and "Crises passées" in ended.text
    crisis_id = (await client.get("/v1/crises", headers=territory.coordinator)).json()["items"][0][
        "id"
    ]
    assert f'href="/coordination/crise/{crisis_id}/rapport">Rapport : Canicule</a>' in ended.text


async def test_declaration_errors_name_their_field(client, territory, session, clock):
    clock.set(MONDAY)
    await sign_in(client, territory.coordinator, "/coordination/crise")
    page = await client.get("/coordination/crise")
    form = {"csrf": csrf(page.text), "kind": "epidemic", "title": "",
            "started_at": "2030-03-04T08:00", "expected_end_at": "2030-03-08T20:00",
            "communes": "Nulle-Part-sur-Mer"}  # fmt: skip
    r = await client.post("/coordination/crise", data=form)
    assert r.status_code == 422
    assert 'href="#title"' in r.text and 'href="#communes"' in r.text
    assert "introuvable" in r.text


async def test_the_regulator_sees_the_banner_and_crisis_slots_first(
    client, territory, other_territory, session, clock
):
    link = await declared_link(client, territory, session, clock)
    call = await session.scalar(select(CrisisCall))
    r = await client.post(f"/v1/crisis-calls/{call.id}/open", headers=territory.practice)
    assert r.status_code == 201, r.text
    r = await client.post(
        f"/v1/practitioners/{territory.practitioner_id}/slots",
        json={"start": "2030-03-04T10:00:00+01:00", "end": "2030-03-04T10:30:00+01:00",
              "modality": "cabinet", "visibility": "sas"},
        headers=territory.practice,
    )  # fmt: skip
    await sign_in(client, territory.regulator, "/regulation")
    page = (await client.get("/regulation?commune=15014&rayon=20")).text
    assert "Situation sanitaire exceptionnelle en cours : Grippe saisonnière" in page
    assert "communes concernées : Aurillac" in page and "depuis le 04/03/2030" in page
    tags = [m.start() for m in re.finditer('class="crisis-tag"', page)]
    first_ordinary = page.index("à 10:00")
    assert len(tags) == 8 and all(t < first_ordinary for t in tags)  # 48 hours: Mon and Tue
    await sign_in(client, other_territory.regulator, "/regulation")
    assert "Situation sanitaire" not in (await client.get("/regulation")).text
    assert link


async def test_a_one_off_slot_may_be_crisis_capacity_while_a_crisis_runs(
    client, territory, session, clock
):
    clock.set(MONDAY)
    await sign_in(client, territory.practice, "/cabinet")
    form_url = f"/cabinet/medecins/{territory.practitioner_id}/creneau"
    page = await client.get(form_url)
    assert "Capacité de crise" not in page.text  # no crisis: no box
    assert (await declare(client, territory)).status_code == 201
    page = await client.get(form_url)
    assert "Capacité de crise : Grippe saisonnière" in page.text
    base = {"csrf": csrf(page.text), "start": "2030-03-04T11:00", "end": "2030-03-04T11:30",
            "modality": "cabinet", "crise": "true"}  # fmt: skip
    r = await client.post(form_url, data={**base, "visibility": "cpts"})
    assert r.status_code == 422 and 'href="#visibility"' in r.text
    r = await client.post(form_url, data={**base, "visibility": "sas"})
    assert r.status_code == 303, r.text
    r = await client.post(
        form_url, data={**base, "start": "2030-03-04T12:00", "end": "2030-03-04T12:30",
                        "visibility": "sas", "crise": ""},
    )  # fmt: skip
    assert r.status_code == 303, r.text
    found = (await client.get("/v1/slots", headers=territory.regulator)).json()["items"]
    assert [(s["start"][11:16], s["crisis_id"] is not None) for s in found] == [
        ("11:00", True), ("12:00", False),
    ]  # fmt: skip


async def test_the_coordinator_calls_the_volunteers_added_since(client, territory, session, clock):
    clock.set(MONDAY)
    await write_plan(session, territory.id, [volunteer(territory.practitioner_id)])
    assert (await declare(client, territory)).status_code == 201
    await sign_in(client, territory.coordinator, "/coordination/crise")
    page = await client.get("/coordination/crise")
    r = await client.post("/coordination/crise/appels", data={"csrf": csrf(page.text)})
    assert r.status_code == 303
    shown = await client.get("/coordination/crise")
    assert "Aucun nouveau volontaire dans le plan" in shown.text
    r = await client.post(
        "/v1/practitioners", json={"practice_id": territory.practice_id, "rpps": "10999999995",
                                   "family_name": "Durand", "given_name": "Léa"},
        headers=territory.coordinator,
    )  # fmt: skip
    await write_plan(session, territory.id, [
        volunteer(territory.practitioner_id), volunteer(r.json()["id"]),
    ], version=2)  # fmt: skip
    await client.post("/coordination/crise/appels", data={"csrf": csrf(page.text)})
    shown = await client.get("/coordination/crise")
    assert "1 nouveau(x) volontaire(s) appelé(s)" in shown.text and "Dr Léa Durand" in shown.text
