"""The booking page /agenda/{practitioner_id} for the SAS platform's regulator accounts, over
HTTP: sign-in by a one-time link e-mailed through a real local SMTP server (aiosmtpd) and by
Pro Santé Connect against a real OpenID Connect provider (oidc-provider-mock), the return to
the page asked for, and bookings recorded with the signed-in account as operator."""

from __future__ import annotations

import asyncio
import re
import socket
import uuid
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from html import unescape
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, update

from app.activity.audit import PatientAccess
from app.config import Settings, get_settings
from app.outbox.models import OutboxMessage
from app.sas_bridge.sign_in_models import AccountSession, SignInLink
from app.scheduling.booking_models import Booking
from tests.test_regulator_accounts import SAS, account
from tests.test_web_pages import PATIENT, publish_all_day

RPPS = "urn:oid:1.2.250.1.71.4.2.1"


# A real SMTP server on 127.0.0.1 --------------------------------------------------------------


@dataclass
class Inbox:
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls it by this name
        self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 Message accepted"

    async def wait(self, count: int = 1, seconds: float = 5.0) -> list[EmailMessage]:
        for _ in range(int(seconds / 0.05)):
            if len(self.messages) >= count:
                break
            await asyncio.sleep(0.05)
        return self.messages

    def link(self, index: int = -1) -> str:
        body = self.messages[index].get_content()
        match = re.search(r"(http://\S+/agenda/connexion/lien\?jeton=\S+)", body)
        assert match, body
        return match.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    controller.inbox = inbox
    yield controller
    controller.stop()


@pytest.fixture
def settings(database_url: str, smtp) -> Settings:
    return Settings(
        database_url=database_url,
        scheduler_enabled=False,
        log_level="WARNING",
        max_body_bytes=64_000,
        rate_limit_per_minute=0,
        public_base_url="http://test",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
    )


@pytest.fixture
def platform_url(monkeypatch):
    """Appointment notifications are queued (not sent: no delivery job runs here)."""
    monkeypatch.setattr(get_settings(), "sas_platform_url", "https://platform.invalid/fhir")


EMAIL = "marc.durand@sas15.fr"


@pytest.fixture
async def account_id(client, world) -> str:
    """An active regulator account created by the platform, with its SAS technical id."""
    platform = await world.key("sas_platform")
    technical = str(uuid.uuid4())
    r = await client.post(
        "/fhir/Practitioner", json=account(technical, email=EMAIL), headers=platform
    )
    assert r.status_code == 201, r.text
    return technical


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def local(url: str) -> str:
    """A URL of the service as the test client asks for it (path and query)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def ask_for_link(client, email: str, next_: str) -> httpx.Response:
    form = await client.get(f"/agenda/connexion?next={quote(next_, safe='')}")
    assert form.status_code == 200, form.text
    return await client.post(
        "/agenda/connexion", data={"csrf": csrf_of(form.text), "email": email, "next": next_}
    )


async def follow_link(client, link: str) -> httpx.Response:
    page = await client.get(local(link))
    assert page.status_code == 200, page.text
    jeton = parse_qs(urlsplit(link).query)["jeton"][0]
    return await client.post(
        "/agenda/connexion/lien", data={"csrf": csrf_of(page.text), "jeton": jeton}
    )


async def sign_in_by_link(client, smtp, next_: str, email: str = EMAIL) -> httpx.Response:
    before = len(smtp.inbox.messages)
    sent = await ask_for_link(client, email, next_)
    assert sent.status_code == 200
    await smtp.inbox.wait(before + 1)
    return await follow_link(client, smtp.inbox.link())


def text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


# Sign-in by e-mailed link ---------------------------------------------------------------------


async def test_visitor_signs_in_by_emailed_link_and_returns_to_the_page_asked(
    client, territory, account_id, smtp, session
):
    await publish_all_day(client, territory)
    page_url = f"/agenda/{territory.practitioner_id}?origin=sas&x=1"
    r = await client.get(page_url)
    assert r.status_code == 303
    assert r.headers["location"] == f"/agenda/connexion?next={quote(page_url, safe='')}"

    signed = await sign_in_by_link(client, smtp, page_url)
    assert signed.status_code == 303 and signed.headers["location"] == page_url  # origin kept
    cookie = signed.headers["set-cookie"]
    assert "creneau_agenda=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie

    mail = smtp.inbox.messages[-1]
    assert mail["To"] == EMAIL and mail["Subject"] == "Votre lien de connexion à Créneau"
    token = parse_qs(urlsplit(smtp.inbox.link()).query)["jeton"][0]
    stored = (await session.scalars(select(SignInLink.token_digest))).all()
    assert token not in stored and len(stored[-1]) == 64  # only a digest is kept

    page = await client.get(page_url)
    assert page.status_code == 200, page.text
    shown = text(page.text)
    assert "Réserver avec le Dr Claire Martin" in shown
    assert "Régulation SAS — Marc Durand" in shown  # who is signed in
    assert len(re.findall(r'name="slot_id"', page.text)) >= 40  # 48 h of hourly slots
    assert f'action="/agenda/{territory.practitioner_id}/reserver?origin=sas&amp;x=1"' in page.text


async def test_unknown_or_inactive_address_gets_the_same_answer_and_no_mail(
    client, territory, account_id, smtp, world
):
    platform = await world.key("sas_platform")
    inactive = account(str(uuid.uuid4()), email="ancien@sas15.fr", active=False)
    assert (await client.post("/fhir/Practitioner", json=inactive, headers=platform)).is_success
    next_ = f"/agenda/{territory.practitioner_id}"
    answers = []
    for email in ("inconnu@sas15.fr", "ancien@sas15.fr", EMAIL):
        r = await ask_for_link(client, email, next_)
        assert r.status_code == 200
        answers.append(text(r.text).replace(email, "ADDRESS"))
    assert answers[0] == answers[1] == answers[2]
    assert "un lien de connexion vient d'y être envoyé" in answers[0]
    messages = await smtp.inbox.wait(1)
    await asyncio.sleep(0.3)
    assert [m["To"] for m in messages] == [EMAIL]  # only the active account's address


async def test_a_link_serves_once_and_expires(client, territory, account_id, smtp, session):
    next_ = f"/agenda/{territory.practitioner_id}"
    await ask_for_link(client, EMAIL, next_)
    await smtp.inbox.wait(1)
    link = smtp.inbox.link()
    assert (await follow_link(client, link)).status_code == 303
    client.cookies.clear()
    reused = await client.get(local(link))
    assert reused.status_code == 400 and "Lien de connexion expiré" in reused.text
    jeton = parse_qs(urlsplit(link).query)["jeton"][0]
    login = await client.get("/agenda/connexion")
    again = await client.post(
        "/agenda/connexion/lien", data={"csrf": csrf_of(login.text), "jeton": jeton}
    )
    assert again.status_code == 400 and "creneau_agenda=" not in again.headers.get("set-cookie", "")

    await ask_for_link(client, EMAIL, next_)
    await smtp.inbox.wait(2)
    late = smtp.inbox.link()
    await session.execute(update(SignInLink).values(expires_at=func.now()))
    await session.commit()
    assert (await client.get(local(late))).status_code == 400
    login = await client.get("/agenda/connexion")
    jeton = parse_qs(urlsplit(late).query)["jeton"][0]
    expired = await client.post(
        "/agenda/connexion/lien", data={"csrf": csrf_of(login.text), "jeton": jeton}
    )
    assert expired.status_code == 400
    assert (await client.get(next_)).status_code == 303  # still not signed in


async def test_links_are_limited_per_account_and_forms_need_their_token(
    client, territory, account_id, smtp
):
    next_ = f"/agenda/{territory.practitioner_id}"
    for _ in range(5):
        assert (await ask_for_link(client, EMAIL, next_)).status_code == 200
    await smtp.inbox.wait(3)
    await asyncio.sleep(0.3)
    assert len(smtp.inbox.messages) == 3  # SIGN_IN_LINKS_PER_WINDOW
    forged = await client.post(
        "/agenda/connexion", data={"csrf": "forged", "email": EMAIL, "next": next_}
    )
    assert forged.status_code == 403
    bad = await ask_for_link(client, "pas-une-adresse", next_)
    assert bad.status_code == 422 and "Adresse e-mail invalide" in text(bad.text)


async def test_next_never_leaves_the_booking_pages(client, territory, account_id, smtp):
    signed = await sign_in_by_link(client, smtp, "https://evil.example/agenda/x")
    assert signed.headers["location"] == "/agenda"
    home = await client.get("/agenda")
    assert home.status_code == 200 and "Connecté en tant que Marc Durand" in text(home.text)


# Booking ------------------------------------------------------------------------------------


async def signed_in(client, smtp, territory) -> str:
    page_url = f"/agenda/{territory.practitioner_id}?origin=sas"
    assert (await sign_in_by_link(client, smtp, page_url)).status_code == 303
    return page_url


def booking_form(html: str, **over: str) -> dict[str, str]:
    slot = re.search(r'name="slot_id" id="slot-[^"]+" value="([^"]+)"', html).group(1)
    jeton = re.search(r'name="jeton" value="([^"]+)"', html).group(1)
    return {"csrf": csrf_of(html), "jeton": jeton, "slot_id": slot, **PATIENT, **over}


async def test_booking_records_the_account_as_operator_and_tells_the_platform(
    client, territory, account_id, smtp, session, platform_url
):
    await publish_all_day(client, territory)
    page_url = await signed_in(client, smtp, territory)
    page = await client.get(page_url)
    form = booking_form(page.text, sas_case_ref="SAS15-2026-000777")
    r = await client.post(f"/agenda/{territory.practitioner_id}/reserver?origin=sas", data=form)
    assert r.status_code == 303, r.text
    assert re.fullmatch(
        rf"/agenda/{territory.practitioner_id}/rendez-vous/[0-9a-f-]{{36}}\?origin=sas",
        r.headers["location"],
    )
    booking = await session.scalar(select(Booking).where(Booking.slot_id == form["slot_id"]))
    assert booking.status == "booked" and booking.patient_family_name == "Lemoine"
    assert str(booking.regulator_id) == territory.regulator_id  # the territory's SAS
    assert booking.operator_account_id is not None
    assert booking.sas_case_ref == "SAS15-2026-000777"
    sent = await session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.kind == "sas_appointment", OutboxMessage.ordering_key == booking.id
        )
    )
    assert sent is not None and sent.payload["method"] == "POST"
    assert sent.payload["resource"]["status"] == "booked"
    operator = sent.payload["resource"]["extension"][0]["valueReference"]["identifier"]
    assert (operator["system"], operator["value"]) == (SAS, account_id)
    assert "Lemoine" not in str(sent.payload)  # no patient data goes to the platform

    done = await client.get(r.headers["location"])
    shown = text(done.text)
    assert done.status_code == 200 and "Rendez-vous réservé." in shown
    assert "LEMOINE Jeanne" in shown and "par Marc Durand" in shown
    logged = await session.scalar(select(func.count()).where(PatientAccess.record_id == booking.id))
    assert logged == 1

    # The regulator's own API key sees the booking: it is the SAS's.
    listed = await client.get("/v1/bookings", headers=territory.regulator)
    assert str(booking.id) in [b["id"] for b in listed.json()["items"]]
    # Resubmitting the same form books once.
    again = await client.post(f"/agenda/{territory.practitioner_id}/reserver", data=form)
    assert (
        again.status_code == 303
        and again.headers["location"].split("?")[0] == (r.headers["location"].split("?")[0])
    )


async def test_a_slot_just_taken_says_so_and_keeps_the_patient(
    client, territory, account_id, smtp, session
):
    await publish_all_day(client, territory)
    page_url = await signed_in(client, smtp, territory)
    form = booking_form((await client.get(page_url)).text)
    r = await client.post(
        "/v1/bookings",
        json={"slot_id": form["slot_id"], "patient": {"family_name": "Autre", "given_name": "A",
              "birth_date": "1950-01-01", "phone": "0611111111"}},
        headers={**territory.regulator, "Idempotency-Key": str(uuid.uuid4())},
    )  # fmt: skip
    assert r.status_code == 201
    taken = await client.post(f"/agenda/{territory.practitioner_id}/reserver", data=form)
    assert taken.status_code == 409
    shown = text(taken.text)
    assert "Ce créneau vient d'être pris par un autre régulateur." in shown
    assert 'value="Lemoine"' in taken.text  # the patient's details stay
    assert f'value="{form["slot_id"]}"' not in taken.text  # no longer offered
    invalid = await client.post(
        f"/agenda/{territory.practitioner_id}/reserver",
        data={**booking_form(taken.text), "patient.phone": "12"},
    )
    assert invalid.status_code == 422 and "Numéro de téléphone français invalide." in invalid.text
    count = select(func.count()).where(Booking.practitioner_id == territory.practitioner_id)
    assert await session.scalar(count) == 1


async def test_a_slot_of_another_practitioner_is_not_booked_from_this_page(
    client, territory, account_id, smtp, session
):
    await publish_all_day(client, territory)
    page_url = await signed_in(client, smtp, territory)
    form = booking_form((await client.get(page_url)).text)
    r = await client.post(
        "/v1/practitioners",
        json={"practice_id": territory.practice_id, "rpps": "10000000001",
              "family_name": "Roux", "given_name": "Paul"},
        headers=territory.coordinator,
    )  # fmt: skip
    other = r.json()["id"]
    refused = await client.post(f"/agenda/{other}/reserver", data=form)
    assert refused.status_code == 409 and "Ce créneau n'est plus proposé." in text(refused.text)
    assert await session.scalar(select(func.count()).where(Booking.slot_id == form["slot_id"])) == 0


async def test_deactivated_account_loses_its_sessions_and_cannot_book(
    client, territory, account_id, smtp, session, world
):
    await publish_all_day(client, territory)
    page_url = await signed_in(client, smtp, territory)
    form = booking_form((await client.get(page_url)).text)
    platform = await world.key("sas_platform")
    r = await client.put(
        f"/fhir/Practitioner?identifier={SAS}|{account_id}",
        json=account(account_id, email=EMAIL, active=False),
        headers=platform,
    )
    assert r.status_code == 200, r.text
    ended = await session.scalar(select(func.count()).where(AccountSession.ended_at.is_not(None)))
    assert ended == 1
    assert (await client.get(page_url)).headers["location"].startswith("/agenda/connexion")
    refused = await client.post(f"/agenda/{territory.practitioner_id}/reserver", data=form)
    assert refused.status_code == 303 and refused.headers["location"].startswith(
        "/agenda/connexion?next="
    )
    assert await session.scalar(select(func.count()).where(Booking.slot_id == form["slot_id"])) == 0
    # Reactivated, the old session stays ended; a new link is needed.
    r = await client.put(
        f"/fhir/Practitioner?identifier={SAS}|{account_id}",
        json=account(account_id, email=EMAIL, active=True),
        headers=platform,
    )
    assert r.status_code == 200
    assert (await client.get(page_url)).status_code == 303


async def test_unknown_practitioner_is_a_french_404_and_sign_out_ends_the_session(
    client, territory, account_id, smtp, session
):
    await signed_in(client, smtp, territory)
    for path in (f"/agenda/{uuid.uuid4()}", "/agenda/pas-un-identifiant"):
        r = await client.get(path)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
        assert "Ce médecin n'existe pas" in text(r.text)
    page = await client.get(f"/agenda/{territory.practitioner_id}")
    out = await client.post("/agenda/deconnexion", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303
    assert await session.scalar(select(func.count()).where(AccountSession.ended_at.is_(None))) == 0


async def test_a_territory_without_sas_cannot_be_booked(
    client, world, admin, account_id, smtp, session
):
    r = await client.post(
        "/v1/territories",
        json={"name": "CPTS sans SAS", "timezone": "Europe/Paris", "department": "15"},
        headers=admin,
    )
    t = r.json()["id"]
    r = await client.post(
        "/v1/practices",
        json={"territory_id": t, "name": "MSP", "address": "1 rue", "commune_insee": "15014",
              "lat": 44.9, "lon": 2.4},
        headers=admin,
    )  # fmt: skip
    r = await client.post(
        "/v1/practitioners",
        json={"practice_id": r.json()["id"], "rpps": "10000000002", "family_name": "Roux",
              "given_name": "Paul"},
        headers=admin,
    )  # fmt: skip
    signed = await sign_in_by_link(client, smtp, f"/agenda/{r.json()['id']}")
    page = await client.get(signed.headers["location"])
    assert page.status_code == 403 and "rattaché à aucun SAS" in text(page.text)


# Pro Santé Connect ----------------------------------------------------------------------------


@pytest.fixture
def oidc(monkeypatch):
    from oidc_provider_mock import run_server_in_thread

    # The provider is served over plain http on 127.0.0.1 in tests.
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    with run_server_in_thread(require_nonce=True) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def psc_settings(settings, oidc) -> Settings:
    return settings.model_copy(
        update={
            "psc_issuer": oidc,
            "psc_client_id": "creneau-test",
            "psc_client_secret": "secret-de-test",
            "psc_scopes": "openid profile",
        }
    )


@pytest.fixture
async def psc_client(psc_settings, sessionmaker):
    from app.main import create_app
    from app.sas_bridge.feed_fetch import feed_client

    app = create_app(psc_settings)
    app.state.sessionmaker = sessionmaker
    app.state.feed_http = feed_client()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
    await app.state.feed_http.aclose()


async def psc_sign_in(client, oidc: str, sub: str, claims: dict, next_: str) -> httpx.Response:
    async with httpx.AsyncClient() as provider:
        r = await provider.put(f"{oidc}/users/{sub}", json=claims)
        assert r.status_code == 204
        start = await client.get(f"/agenda/connexion/psc?next={quote(next_, safe='')}")
        assert start.status_code == 303, start.text
        authorize = start.headers["location"]
        asked = parse_qs(urlsplit(authorize).query)
        assert authorize.startswith(f"{oidc}/oauth2/authorize")
        assert asked["code_challenge_method"] == ["S256"] and asked["code_challenge"][0]
        assert asked["nonce"][0] and asked["state"][0]
        assert asked["redirect_uri"] == ["http://test/agenda/connexion/psc/retour"]
        assert asked["acr_values"] == ["eidas1"]
        back = await provider.post(authorize, data={"sub": sub})
        assert back.status_code == 302, back.text
    return await client.get(local(back.headers["location"]))


async def test_sign_in_by_pro_sante_connect_matches_the_national_identifier(
    psc_client, oidc, territory, world, session
):
    await publish_all_day(psc_client, territory)
    platform = await world.key("sas_platform")
    rpps = "10003456789"
    body = account(str(uuid.uuid4()), national=f"8{rpps}", email="psc@sas15.fr")
    assert (await psc_client.post("/fhir/Practitioner", json=body, headers=platform)).is_success
    page_url = f"/agenda/{territory.practitioner_id}?origin=sas"
    login = await psc_client.get(f"/agenda/connexion?next={quote(page_url, safe='')}")
    assert "Se connecter avec Pro Santé Connect" in login.text

    signed = await psc_sign_in(
        psc_client,
        oidc,
        "psc-sub-1",
        {"SubjectNameID": f"8{rpps}", "given_name": "Marc", "family_name": "Durand"},
        page_url,
    )
    assert signed.status_code == 303, signed.text
    assert signed.headers["location"] == page_url
    method = await session.scalar(select(AccountSession.method))
    assert method == "psc"
    page = await psc_client.get(page_url)
    assert page.status_code == 200 and "Réserver avec le Dr Claire Martin" in text(page.text)
    form = booking_form(page.text)
    booked = await psc_client.post(f"/agenda/{territory.practitioner_id}/reserver", data=form)
    assert booked.status_code == 303
    booking = await session.scalar(select(Booking).where(Booking.slot_id == form["slot_id"]))
    assert booking.operator_account_id is not None


async def test_pro_sante_connect_refusals(psc_client, oidc, territory):
    page_url = f"/agenda/{territory.practitioner_id}"
    unknown = await psc_sign_in(
        psc_client, oidc, "psc-sub-2", {"SubjectNameID": "899999999999"}, page_url
    )
    assert unknown.status_code == 403 and "Pas de compte SAS actif" in text(unknown.text)
    assert "creneau_agenda=" not in unknown.headers.get("set-cookie", "")
    forged = await psc_client.get("/agenda/connexion/psc/retour?code=x&state=forged")
    assert forged.status_code == 400 and "Connexion interrompue" in text(forged.text)


async def test_pro_sante_connect_is_off_unless_configured(client):
    login = await client.get("/agenda/connexion")
    assert "Pro Santé Connect" not in login.text
    assert (await client.get("/agenda/connexion/psc")).status_code == 404
