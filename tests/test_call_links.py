"""The signed, expiring link of a call for slots: in the e-mail (to a real local SMTP server)
and in the `offer.low` webhook; it leads the called GP's practice, signed in first if need
be, to the GP's one-off slot form prefilled; tampered, expired or another practice's links
get a French page, never a 500."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, time
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import select, update

from app.config import Settings
from app.directory.models import Practitioner
from app.outbox.models import OutboxMessage
from app.unmet_demand import call_links, calls
from app.unmet_demand.models import SlotCall
from tests.test_agenda_page import smtp  # noqa: F401 - fixture
from tests.test_call_gap import PARIS, other_gp, slot
from tests.test_slot_calls import floor, opt_in, run
from tests.test_web_dashboard import sign_in


async def called(client, t, session, under=1) -> SlotCall:
    await floor(client, t, under)
    assert (await opt_in(client, t, t.practitioner_id)).status_code == 204
    assert await run(client, t) == 1
    call = await session.scalar(select(SlotCall))
    assert call is not None
    return call


def link_path(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


async def webhook_link(client, t, session, under=1) -> str:
    await client.post("/v1/webhooks", json={"url": "https://cabinet.example/hooks"},
                      headers=t.practice)  # fmt: skip
    await called(client, t, session, under)
    hook = await session.scalar(
        select(OutboxMessage).where(OutboxMessage.event_type == "offer.low")
    )
    assert hook is not None
    return str(hook.payload["data"]["offer"]["link"])


async def test_the_webhook_carries_a_link_bound_to_the_call_and_the_gp(client, territory, session):
    link = await webhook_link(client, territory, session)
    call = await session.scalar(select(SlotCall))
    assert link.startswith("http") and call_links.PATH in link
    token = unquote(parse_qs(urlsplit(link).query)["jeton"][0])
    key = call_links.secret(client._transport.app.state.settings)
    assert call_links.read(key, token, call.sent_at) == (call.id, call.practitioner_id)


async def test_the_e_mail_carries_the_link_and_its_expiry(client, territory, session, smtp):  # noqa: F811
    call = await called(client, territory, session)
    settings = Settings(smtp_host="127.0.0.1", smtp_port=smtp.port,
                        public_base_url="https://creneau.example")  # fmt: skip
    assert await calls.send_pending(session, settings) == {"sent": 1, "failed": 0}
    [message] = await smtp.inbox.wait(1)
    body = message.get_content()
    [link] = re.findall(r"https://creneau\.example/cabinet/appel-creneaux\?jeton=\S+", body)
    token = unquote(parse_qs(urlsplit(link).query)["jeton"][0])
    assert call_links.read(call_links.secret(settings), token, call.sent_at) == (
        call.id,
        call.practitioner_id,
    )
    assert "Ce lien est valable jusqu'au" in body


async def test_a_valid_link_leads_the_signed_in_practice_to_the_prefilled_form(
    client, territory, session
):
    link = await webhook_link(client, territory, session)
    await sign_in(client, territory.practice, "/cabinet")
    r = await client.get(link_path(link))
    assert r.status_code == 303, r.text
    target = r.headers["location"]
    assert target.startswith(f"/cabinet/medecins/{territory.practitioner_id}/creneau?debut=")
    form = await client.get(target)
    assert form.status_code == 200
    debut = parse_qs(urlsplit(target).query)["debut"][0]
    assert f'value="{debut}"' in form.text
    assert "Appel à créneaux de votre CPTS" in form.text


async def test_a_link_opened_signed_out_goes_to_sign_in_and_back(client, territory, session):
    link = await webhook_link(client, territory, session)
    r = await client.get(link_path(link))
    assert r.status_code == 303
    assert r.headers["location"].startswith("/connexion?next=/cabinet/appel-creneaux")
    back = unquote(r.headers["location"].removeprefix("/connexion?next="))
    signed = await sign_in(client, territory.practice, back)
    assert signed.headers["location"] == link_path(unquote(link))
    assert (await client.get(signed.headers["location"])).status_code == 303


async def test_a_tampered_link_gets_a_french_page(client, territory, session):
    link = await webhook_link(client, territory, session)
    token = unquote(parse_qs(urlsplit(link).query)["jeton"][0])
    call_id, gp, expires, mac = token.split(".")
    await sign_in(client, territory.practice, "/cabinet")
    for bad in (
        f"{call_id}.{uuid.uuid4()}.{expires}.{mac}",  # another GP
        f"{uuid.uuid4()}.{gp}.{expires}.{mac}",  # another call
        f"{call_id}.{gp}.{int(expires) + 86400}.{mac}",  # a later expiry
        f"{call_id}.{gp}.{expires}.{mac[:-2]}xx",
        "nonsense",
        "",
    ):
        r = await client.get(call_links.PATH, params={"jeton": bad})
        assert r.status_code == 400, bad
        assert "Lien invalide" in r.text and "pas valide" in r.text


async def test_an_expired_link_gets_a_french_page(client, territory, session, clock):
    link = await webhook_link(client, territory, session)
    clock.advance(hours=call_links.VALID_HOURS, seconds=1)
    r = await client.get(link_path(link))
    assert r.status_code == 410
    assert "Lien expiré" in r.text and "48 heures" in r.text


async def test_another_practice_cannot_use_the_link(client, territory, other_territory, session):
    link = await webhook_link(client, territory, session)
    await sign_in(client, other_territory.practice, "/cabinet")
    r = await client.get(link_path(link))
    assert r.status_code == 403
    assert "autre cabinet" in r.text


async def test_the_slot_form_ignores_a_malformed_prefill(client, territory):
    await sign_in(client, territory.practice, "/cabinet")
    r = await client.get(
        f"/cabinet/medecins/{territory.practitioner_id}/creneau?debut=<script>&fin=2030-13-01T10:00"
    )
    assert r.status_code == 200
    assert "<script>" not in r.text and "2030-13-01" not in r.text


async def prefilled(client, t, session) -> tuple[str, str]:
    """Open the call's link as the signed-in practice: the form's `debut` and its page."""
    link = await webhook_link(client, t, session, under=10)
    await sign_in(client, t.practice, "/cabinet")
    r = await client.get(link_path(link))
    assert r.status_code == 303, r.text
    form = await client.get(r.headers["location"])
    assert form.status_code == 200
    query = parse_qs(urlsplit(r.headers["location"]).query)
    return f"{query['debut'][0]}/{query['fin'][0]}", form.text


async def test_the_link_prefills_the_hour_without_free_sas_slots_and_says_so(
    client, territory, session, clock
):
    clock.set(datetime(2026, 12, 2, 7, 30, tzinfo=PARIS))  # Wednesday, 07:30 in Paris
    gp = await session.get(Practitioner, uuid.UUID(territory.practitioner_id))
    offer = await other_gp(session, gp)
    for h in (9, 10):  # the territory's offer at 09:00 and 10:00: 11:00 is the first gap
        session.add(slot(offer, datetime(2026, 12, 2, h, 15, tzinfo=PARIS)))
    await session.commit()
    period, page = await prefilled(client, territory, session)
    assert period == "2026-12-02T11:00/2026-12-02T11:30"
    assert "aucun créneau SAS libre de 11:00 à 12:00 le mercredi 2 décembre" in page


async def test_the_link_says_how_many_free_sas_slots_the_thinnest_hour_has(
    client, territory, session, clock
):
    clock.set(datetime(2026, 12, 2, 7, 30, tzinfo=PARIS))
    await session.execute(
        update(Practitioner)
        .where(Practitioner.id == uuid.UUID(territory.practitioner_id))
        .values(accepts_overbooking=True, overbooking_daily_cap=1,
                overbooking_start_time=time(9), overbooking_end_time=time(10))
    )  # fmt: skip
    gp = await session.get(Practitioner, uuid.UUID(territory.practitioner_id))
    offer = await other_gp(session, gp)
    # The GP's hour, 09:00, on the two days of the window: 2 free SAS slots, then 1.
    for start in ((2, 9, 0), (2, 9, 30), (3, 9, 0)):
        day, h, m = start
        session.add(slot(offer, datetime(2026, 12, day, h, m, tzinfo=PARIS)))
    await session.commit()
    period, page = await prefilled(client, territory, session)
    assert period.startswith("2026-12-03T09:00/")
    assert "1 créneau SAS libre de 09:00 à 10:00 le jeudi 3 décembre" in page
