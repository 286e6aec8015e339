"""The signed, expiring link of a call for slots: in the e-mail (to a real local SMTP server)
and in the `offer.low` webhook; it leads the called GP's practice, signed in first if need
be, to the GP's one-off slot form prefilled; tampered, expired or another practice's links
get a French page, never a 500."""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import select

from app.config import Settings
from app.outbox.models import OutboxMessage
from app.unmet_demand import call_links, calls
from app.unmet_demand.models import SlotCall
from tests.test_agenda_page import smtp  # noqa: F401 - fixture
from tests.test_slot_calls import floor, opt_in, run
from tests.test_web_dashboard import sign_in


async def called(client, t, session) -> SlotCall:
    await floor(client, t, 1)
    assert (await opt_in(client, t, t.practitioner_id)).status_code == 204
    assert await run(client, t) == 1
    call = await session.scalar(select(SlotCall))
    assert call is not None
    return call


def link_path(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


async def webhook_link(client, t, session) -> str:
    await client.post("/v1/webhooks", json={"url": "https://cabinet.example/hooks"},
                      headers=t.practice)  # fmt: skip
    await called(client, t, session)
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
