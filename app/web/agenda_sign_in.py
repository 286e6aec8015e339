"""Signing in to the agenda pages (/agenda/connexion): by a one-time link e-mailed to the
account's address or, when configured, by Pro Santé Connect (app.sas_bridge.account_sign_in,
app.web.pro_sante_connect); signing out. Its routes come first in the booking page's router
(app.web.agenda_pages), whose /agenda/{practitioner_id} would otherwise take /agenda/connexion."""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import uuid
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from itsdangerous import BadSignature
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.responses import Response

from app.api.deps import SessionDep
from app.config import Settings
from app.errors import NotFound
from app.sas_bridge import account_sign_in as sign_in
from app.sas_bridge.mail import send_sign_in_link
from app.web import pro_sante_connect as psc
from app.web.agenda_account import (
    COOKIE,
    HOME,
    LOGIN_CSRF,
    PSC_COOKIE,
    AgendaUserDep,
    message_page,
    next_page,
    set_cookie,
    settings_of,
    sign_in_url,
    signed_in,
    signer,
)
from app.web.auth import Form, read_form
from app.web.render import page, redirect

log = logging.getLogger(__name__)
router = APIRouter(prefix="/agenda", include_in_schema=False)

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


# Sign-in by e-mailed link -------------------------------------------------------------------


def _sign_in_page(
    request: Request,
    next_: str,
    *,
    status: int = 200,
    email: str = "",
    error: str | None = None,
    sent: bool = False,
    form_error: str | None = None,
) -> Response:
    token = request.cookies.get(LOGIN_CSRF) or secrets.token_urlsafe(24)
    settings = settings_of(request)
    response = page(
        "agenda_sign_in.html",
        status,
        csrf=token,
        next=next_,
        email=email,
        error=error,
        form_error=form_error,
        sent=sent,
        minutes=settings.sign_in_link_minutes,
        mail_enabled=bool(settings.smtp_host),
        psc_enabled=settings.psc_enabled,
    )
    set_cookie(response, request, LOGIN_CSRF, token, 3600, HOME)
    return response


def _login_csrf_ok(request: Request, form: Form) -> bool:
    expected = request.cookies.get(LOGIN_CSRF)
    return bool(expected) and hmac.compare_digest(expected or "", form.get("csrf"))


@router.get("/connexion")
async def sign_in_form(request: Request, user: AgendaUserDep, next: str | None = None) -> Response:
    if user is not None:
        return redirect(next_page(next))
    return _sign_in_page(request, next_page(next))


@router.post("/connexion")
async def ask_for_link(request: Request, background: BackgroundTasks) -> Response:
    """The same answer whether or not the address is an active account's, so that accounts
    cannot be listed, and the same work before it: the account lookup, the link and the e-mail
    all come after the response."""
    form = await read_form(request)
    next_ = next_page(form.get("next"))
    email = form.get("email")
    if not _login_csrf_ok(request, form):
        return _sign_in_page(
            request, next_, status=403, email=email, form_error="La page a expiré : réessayez."
        )
    address = request.client.host if request.client else "?"
    request.app.state.sign_in_limiter.check(uuid.uuid5(uuid.NAMESPACE_URL, f"link:{address}"))
    if not _EMAIL.match(email) or len(email) > 320:
        return _sign_in_page(
            request,
            next_,
            status=422,
            email=email,
            error="Adresse e-mail invalide, ex. prenom.nom@exemple.fr.",
        )
    settings = settings_of(request)
    if settings.smtp_host:
        # Not one statement about the address before the answer: the lookup, the link and
        # the e-mail all happen after it, so a known address takes no longer to answer.
        background.add_task(_issue_and_send, request.app.state.sessionmaker, settings, email, next_)
    return _sign_in_page(request, next_, email=email, sent=True)


async def _issue_and_send(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, email: str, next_: str
) -> None:
    """After the answer: find the account, record a link (own transaction) and e-mail it."""
    try:
        async with sessionmaker() as session:
            issued = await sign_in.issue_link(
                session,
                email,
                next_,
                minutes=settings.sign_in_link_minutes,
                per_window=settings.sign_in_links_per_window,
            )
            await session.commit()
    except (SQLAlchemyError, OSError) as exc:
        log.error("sign-in link not issued", extra={"error": type(exc).__name__})
        return
    if issued is not None:
        account, token = issued
        url = f"{settings.public_base_url}/agenda/connexion/lien?jeton={token}"
        assert account.email is not None
        await send_sign_in_link(settings, account.id, account.email, url)


@router.get("/connexion/lien")
async def link_page(request: Request, session: SessionDep, jeton: str = "") -> Response:
    """A page with one button: a link is used up by a deliberate click, not by the mail
    filters that open every link of a message to check it."""
    target = await sign_in.link_target(session, jeton) if jeton else None
    if target is None:
        return _expired_link()
    token = request.cookies.get(LOGIN_CSRF) or secrets.token_urlsafe(24)
    response = page("agenda_link.html", 200, csrf=token, jeton=jeton)
    set_cookie(response, request, LOGIN_CSRF, token, 3600, HOME)
    return response


def _expired_link() -> Response:
    return message_page(
        "Lien de connexion expiré",
        "Ce lien de connexion n'est plus valable : il a déjà servi, il a expiré, ou le compte "
        "n'est plus actif. Demandez-en un nouveau depuis la page de réservation.",
        400,
        retry=True,
    )


@router.post("/connexion/lien")
async def use_link(request: Request, session: SessionDep) -> Response:
    form = await read_form(request)
    if not _login_csrf_ok(request, form):
        return message_page(
            "Action refusée", "La page a expiré : rouvrez le lien reçu par e-mail.", 403
        )
    redeemed = await sign_in.redeem_link(
        session, form.get("jeton"), hours=settings_of(request).session_hours
    )
    if redeemed is None:
        return _expired_link()
    opened, target = redeemed
    return signed_in(request, opened.id, next_page(target))


# Sign-in by Pro Santé Connect ---------------------------------------------------------------


def _psc_client(request: Request) -> Any:
    client = request.app.state.psc
    if client is None:
        raise NotFound(
            "Pro Santé Connect is not configured",
            page_message="La connexion par Pro Santé Connect n'est pas proposée ici.",
        )
    return client


def _psc_unavailable() -> Response:
    return message_page(
        "Pro Santé Connect indisponible",
        "La connexion par Pro Santé Connect n'a pas abouti. Réessayez dans un instant, ou "
        "demandez un lien de connexion par e-mail.",
        502,
        retry=True,
    )


@router.get("/connexion/psc")
async def psc_start(request: Request, next: str | None = None) -> Response:
    client = _psc_client(request)
    settings = settings_of(request)
    try:
        started = await psc.start(client, settings)
    except psc.ProviderError as exc:
        log.warning("Pro Santé Connect unavailable", extra={"reason": str(exc)})
        return _psc_unavailable()
    state = {
        "state": started.state,
        "nonce": started.nonce,
        "verifier": started.code_verifier,
        "next": next_page(next),
    }
    response = redirect(started.url)
    set_cookie(
        response, request, PSC_COOKIE, signer("psc").dumps(state), 600, "/agenda/connexion/psc"
    )
    return response


@router.get("/connexion/psc/retour")
async def psc_return(
    request: Request,
    session: SessionDep,
    code: str = "",
    state: str = "",
    error: str = "",
) -> Response:
    client = _psc_client(request)
    try:
        saved = signer("psc").loads(request.cookies.get(PSC_COOKIE, ""), max_age=600)
        if not isinstance(saved, dict):
            raise TypeError
    except (BadSignature, TypeError):
        saved = None
    if saved is None or not state or not hmac.compare_digest(state, str(saved.get("state"))):
        return message_page(
            "Connexion interrompue",
            "La connexion par Pro Santé Connect a expiré ou ne vient pas de cette page : "
            "recommencez.",
            400,
            retry=True,
        )
    if error or not code:
        return message_page(
            "Connexion annulée",
            "Pro Santé Connect n'a pas confirmé votre identité : la connexion est annulée.",
            401,
            retry=True,
        )
    settings = settings_of(request)
    try:
        national_id = await psc.finish(client, settings, code, saved["nonce"], saved["verifier"])
    except psc.ProviderError as exc:
        log.warning("Pro Santé Connect sign-in failed", extra={"reason": str(exc)})
        return _psc_unavailable()
    account = await sign_in.account_by_national_id(session, national_id)
    if account is None:
        log.info("Pro Santé Connect sign-in: no active account for this national id")
        return message_page(
            "Pas de compte SAS actif",
            "Votre identité est confirmée, mais aucun compte actif de la plateforme nationale "
            "du SAS ne porte votre identifiant national (RPPS). Demandez à votre SAS de "
            "vérifier votre compte.",
            403,
            retry=True,
        )
    opened = await sign_in.open_session(session, account, "psc", hours=settings.session_hours)
    response = signed_in(request, opened.id, next_page(saved.get("next")))
    response.delete_cookie(PSC_COOKIE, path="/agenda/connexion/psc")
    return response


@router.post("/deconnexion")
async def sign_out(request: Request, session: SessionDep, user: AgendaUserDep) -> Response:
    form = await read_form(request)
    if user is not None:
        if not user.check_csrf(form.get("csrf")):
            return message_page("Action refusée", "Le jeton de sécurité est invalide.", 403, user)
        await sign_in.end_session(session, user.session_id)
    response = redirect("/agenda/connexion")
    response.delete_cookie(COOKIE, path=HOME)
    return response


@router.get("")
async def home(request: Request, user: AgendaUserDep) -> Response:
    if user is None:
        return redirect(sign_in_url(HOME))
    return message_page(
        "Vous êtes connecté",
        f"Connecté en tant que {user.name}. Ouvrez la page de réservation d'un médecin depuis "
        "la plateforme nationale du SAS.",
        200,
        user,
    )
