"""The booking page of one practitioner (/agenda/{practitioner_id}), the URL the national SAS
platform puts in every Slot's `comment`, for the regulator accounts the platform created.

- Not signed in: to /agenda/connexion, then back to the page asked for, query (`origin=…`)
  included. Sign-in is by a one-time link e-mailed to the account's address or, when
  configured, by Pro Santé Connect (app.sas_bridge.account_sign_in, app.web.pro_sante_connect).
- The page: the practitioner's bookable slots over the next 48 hours (the API's search, so
  the one availability predicate), in local time; choose one, type the patient, book. The
  booking goes through the API's booking service as the territory's SAS, with the signed-in
  account as `operator`, so the platform is sent the Appointment.
- Sessions are kept on the server (a signed cookie holds their id): signing out, or the
  platform deactivating the account, ends them. The cookie is SameSite=Lax, not Strict like
  the key-based pages': the platform sends the regulator here from another site, and a
  Strict cookie would not come with that navigation. Every form carries a CSRF token."""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from hashlib import sha256
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.responses import Response

from app.activity.audit import log_access
from app.api.deps import SessionDep
from app.config import Settings, get_settings
from app.directory.models import Practice, Practitioner, Territory
from app.errors import Forbidden, NotFound, SlotUnavailable, ValidationFailed
from app.idempotency import idempotent
from app.sas_bridge import account_sign_in as sign_in
from app.sas_bridge.accounts import account_identifier
from app.sas_bridge.mail import send_sign_in_link
from app.scheduling import booking_creation, booking_views
from app.scheduling import search as slot_search
from app.scheduling.booking_schemas import BookingOut
from app.scheduling.models import Slot
from app.security import Caller
from app.web import pro_sante_connect as psc
from app.web import session as web
from app.web.auth import FLASH, Form, read_form, safe_path, take_flash, with_flash
from app.web.forms import booking_form, not_booked
from app.web.render import page, redirect

log = logging.getLogger(__name__)
router = APIRouter(prefix="/agenda", include_in_schema=False)

COOKIE = "creneau_agenda"
LOGIN_CSRF = "creneau_agenda_login"
PSC_COOKIE = "creneau_psc"
HOME = "/agenda"
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_SLOTS_SHOWN = 100


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int, path: str
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path=path,
    )


def _signer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(web.serializer().secret_key, salt)


def next_page(value: str | None) -> str:
    """Where to go once signed in: a booking page of this site, never elsewhere."""
    path = safe_path(value, HOME)
    if (path != HOME and not path.startswith(f"{HOME}/")) or path.startswith("/agenda/connexion"):
        return HOME
    return path


def sign_in_url(target: str) -> str:
    return f"/agenda/connexion?next={quote(target, safe='')}"


# The signed-in account ----------------------------------------------------------------------


@dataclass(frozen=True)
class AgendaUser:
    """The signed-in account, as plain values (they outlive a rolled-back transaction)."""

    session_id: uuid.UUID
    account_id: uuid.UUID
    name: str
    operator: tuple[str, str]  # the account's identifier (system, value)

    @property
    def csrf(self) -> str:
        key = web.serializer().secret_key
        return hmac.new(key, f"agenda-csrf:{self.session_id}".encode(), sha256).hexdigest()

    def check_csrf(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token, self.csrf)


async def agenda_user(request: Request, session: SessionDep) -> AgendaUser | None:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        value = _signer("agenda").loads(raw, max_age=_settings(request).session_hours * 3600)
        session_id = uuid.UUID(value)
    except (BadSignature, ValueError, TypeError):
        return None
    account = await sign_in.session_account(session, session_id)
    if account is None:
        return None
    request.app.state.rate_limiter.check(account.id)
    name = " ".join(n for n in (account.given_name, account.family_name) if n)
    return AgendaUser(session_id, account.id, name, account_identifier(account))


AgendaUserDep = Annotated[AgendaUser | None, Depends(agenda_user)]


def _signed_in(request: Request, opened_id: uuid.UUID, target: str) -> Response:
    response = redirect(target)
    value = _signer("agenda").dumps(str(opened_id))
    _set_cookie(response, request, COOKIE, value, _settings(request).session_hours * 3600, HOME)
    response.delete_cookie(LOGIN_CSRF, path=HOME)
    return response


def _message(
    title: str, message: str, status: int, user: AgendaUser | None = None, **extra: Any
) -> Response:
    return page(
        "agenda_message.html", status, title=title, message=message, agenda_user=user, **extra
    )


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
    settings = _settings(request)
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
    _set_cookie(response, request, LOGIN_CSRF, token, 3600, HOME)
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
    settings = _settings(request)
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
    _set_cookie(response, request, LOGIN_CSRF, token, 3600, HOME)
    return response


def _expired_link() -> Response:
    return _message(
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
        return _message(
            "Action refusée", "La page a expiré : rouvrez le lien reçu par e-mail.", 403
        )
    redeemed = await sign_in.redeem_link(
        session, form.get("jeton"), hours=_settings(request).session_hours
    )
    if redeemed is None:
        return _expired_link()
    opened, target = redeemed
    return _signed_in(request, opened.id, next_page(target))


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
    return _message(
        "Pro Santé Connect indisponible",
        "La connexion par Pro Santé Connect n'a pas abouti. Réessayez dans un instant, ou "
        "demandez un lien de connexion par e-mail.",
        502,
        retry=True,
    )


@router.get("/connexion/psc")
async def psc_start(request: Request, next: str | None = None) -> Response:
    client = _psc_client(request)
    settings = _settings(request)
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
    _set_cookie(
        response, request, PSC_COOKIE, _signer("psc").dumps(state), 600, "/agenda/connexion/psc"
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
        saved = _signer("psc").loads(request.cookies.get(PSC_COOKIE, ""), max_age=600)
        if not isinstance(saved, dict):
            raise TypeError
    except (BadSignature, TypeError):
        saved = None
    if saved is None or not state or not hmac.compare_digest(state, str(saved.get("state"))):
        return _message(
            "Connexion interrompue",
            "La connexion par Pro Santé Connect a expiré ou ne vient pas de cette page : "
            "recommencez.",
            400,
            retry=True,
        )
    if error or not code:
        return _message(
            "Connexion annulée",
            "Pro Santé Connect n'a pas confirmé votre identité : la connexion est annulée.",
            401,
            retry=True,
        )
    settings = _settings(request)
    try:
        national_id = await psc.finish(client, settings, code, saved["nonce"], saved["verifier"])
    except psc.ProviderError as exc:
        log.warning("Pro Santé Connect sign-in failed", extra={"reason": str(exc)})
        return _psc_unavailable()
    account = await sign_in.account_by_national_id(session, national_id)
    if account is None:
        log.info("Pro Santé Connect sign-in: no active account for this national id")
        return _message(
            "Pas de compte SAS actif",
            "Votre identité est confirmée, mais aucun compte actif de la plateforme nationale "
            "du SAS ne porte votre identifiant national (RPPS). Demandez à votre SAS de "
            "vérifier votre compte.",
            403,
            retry=True,
        )
    opened = await sign_in.open_session(session, account, "psc", hours=settings.session_hours)
    response = _signed_in(request, opened.id, next_page(saved.get("next")))
    response.delete_cookie(PSC_COOKIE, path="/agenda/connexion/psc")
    return response


@router.post("/deconnexion")
async def sign_out(request: Request, session: SessionDep, user: AgendaUserDep) -> Response:
    form = await read_form(request)
    if user is not None:
        if not user.check_csrf(form.get("csrf")):
            return _message("Action refusée", "Le jeton de sécurité est invalide.", 403, user)
        await sign_in.end_session(session, user.session_id)
    response = redirect("/agenda/connexion")
    response.delete_cookie(COOKIE, path=HOME)
    return response


@router.get("")
async def home(request: Request, user: AgendaUserDep) -> Response:
    if user is None:
        return redirect(sign_in_url(HOME))
    return _message(
        "Vous êtes connecté",
        f"Connecté en tant que {user.name}. Ouvrez la page de réservation d'un médecin depuis "
        "la plateforme nationale du SAS.",
        200,
        user,
    )


# The booking page ---------------------------------------------------------------------------


@dataclass
class Doctor:
    practitioner: Practitioner
    practice: Practice
    timezone: str


async def _doctor(session: AsyncSession, practitioner_id: str) -> Doctor:
    try:
        ident = uuid.UUID(practitioner_id)
    except ValueError:
        ident = None
    row = None
    if ident is not None:
        row = (
            await session.execute(
                select(Practitioner, Practice, Territory.timezone)
                .join(Practice, Practice.id == Practitioner.practice_id)
                .join(Territory, Territory.id == Practitioner.territory_id)
                .where(Practitioner.id == ident)
            )
        ).one_or_none()
    if row is None:
        raise NotFound(
            "Practitioner not found",
            page_message="Ce médecin n'existe pas, ou il n'a pas de page de réservation ici.",
        )
    return Doctor(row[0], row[1], row[2])


async def _caller(session: AsyncSession, user: AgendaUser, doctor: Doctor) -> Caller:
    caller = await sign_in.booking_caller(
        session, user.account_id, doctor.practitioner.territory_id
    )
    if caller is None:
        raise Forbidden(
            "No SAS is linked to this practitioner's territory",
            page_message="La réservation n'est pas ouverte pour ce médecin : son territoire "
            "n'est rattaché à aucun SAS.",
        )
    return caller


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _query_without(request: Request, *names: str) -> str:
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in names]
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in kept)


async def _booking_page(
    request: Request,
    session: AsyncSession,
    user: AgendaUser,
    doctor: Doctor,
    caller: Caller,
    *,
    booking: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    taken: str | None = None,
    status: int = 200,
) -> Response:
    cursor = request.query_params.get("suite")
    try:
        rows, next_cursor = await slot_search.search(
            session,
            caller,
            start=None,
            end=None,
            modality=None,
            commune_insee=None,
            near=None,
            radius_km=None,
            practitioner_id=doctor.practitioner.id,
            cursor=cursor,
            limit=_SLOTS_SHOWN,
        )
    except ValidationFailed:  # a stale or forged cursor
        rows, next_cursor = [], None
    errors = errors or {}
    values = booking or {}
    values.setdefault("jeton", str(uuid.uuid4()))  # the Idempotency-Key of this attempt
    query = _query_without(request, "suite")
    flash = take_flash(request)
    response = page(
        "agenda.html",
        status,
        agenda_user=user,
        doctor=doctor,
        slots=rows,
        next_cursor=next_cursor,
        booking=values,
        errors=errors,
        first_error=next(iter(errors), None),
        taken=taken,
        flash=flash,
        action=f"/agenda/{doctor.practitioner.id}/reserver" + (f"?{query}" if query else ""),
        more=f"/agenda/{doctor.practitioner.id}?"
        + (f"{query}&" if query else "")
        + f"suite={quote(next_cursor or '', safe='')}",
    )
    if flash is not None:
        response.delete_cookie(FLASH, path="/")
    return response


@router.get("/{practitioner_id}")
async def booking_page(
    request: Request, session: SessionDep, user: AgendaUserDep, practitioner_id: str
) -> Response:
    if user is None:
        return redirect(sign_in_url(_here(request)))
    doctor = await _doctor(session, practitioner_id)
    caller = await _caller(session, user, doctor)
    return await _booking_page(request, session, user, doctor, caller)


@router.post("/{practitioner_id}/reserver")
async def book(
    request: Request, session: SessionDep, user: AgendaUserDep, practitioner_id: str
) -> Response:
    """Book the chosen slot with the account as operator. A slot taken meanwhile shows the
    page again with the message, the patient's details kept."""
    query = _query_without(request)
    page_url = f"/agenda/{practitioner_id}" + (f"?{query}" if query else "")
    if user is None:  # signed out, expired or deactivated meanwhile: nothing is booked
        return redirect(sign_in_url(page_url))
    form = await read_form(request)
    if not user.check_csrf(form.get("csrf")):
        raise Forbidden(
            "Missing or invalid CSRF token",
            page_message="Le jeton de sécurité du formulaire est absent ou invalide : "
            "rechargez la page et recommencez.",
        )
    doctor = await _doctor(session, practitioner_id)
    caller = await _caller(session, user, doctor)
    system, value = user.operator
    body, errors, token = booking_form(form, operator={"system": system, "value": value})
    if body is None or errors:
        return await _booking_page(
            request, session, user, doctor, caller, booking=form.values(), errors=errors,
            status=422,
        )  # fmt: skip
    slot_practitioner = await session.scalar(
        select(Slot.practitioner_id).where(Slot.id == body.slot_id)
    )

    async def run() -> BookingOut:
        if slot_practitioner != doctor.practitioner.id:  # a slot of another page
            raise NotFound("Slot not found")
        return booking_views.render(await booking_creation.book(session, caller, body))

    try:
        response = await idempotent(session, caller, token, "POST /v1/bookings", body, run)
    except (SlotUnavailable, NotFound, ValidationFailed) as exc:
        await session.rollback()
        doctor = await _doctor(session, practitioner_id)  # the rollback expired it
        values = form.values()
        values.pop("slot_id", None)
        values["jeton"] = str(uuid.uuid4())
        return await _booking_page(
            request,
            session,
            user,
            doctor,
            caller,
            booking=values,
            taken=not_booked(exc, "Ce formulaire a déjà servi à une réservation."),
            status=409,
        )
    booking_id = json.loads(bytes(response.body))["id"]
    target = f"/agenda/{practitioner_id}/rendez-vous/{booking_id}" + (f"?{query}" if query else "")
    return with_flash(redirect(target), request, "Rendez-vous réservé.")


@router.get("/{practitioner_id}/rendez-vous/{booking_id}")
async def booked(
    request: Request,
    session: SessionDep,
    user: AgendaUserDep,
    practitioner_id: str,
    booking_id: uuid.UUID,
) -> Response:
    """The confirmation: what is needed to receive the patient, for the account that booked
    it (and only that one); written to the access log like every booking shown."""
    if user is None:
        return redirect(sign_in_url(_here(request)))
    doctor = await _doctor(session, practitioner_id)
    caller = await _caller(session, user, doctor)
    try:
        view = await booking_views.get_booking(session, caller, booking_id)
    except NotFound:
        view = None
    if (
        view is None
        or view.booking.operator_account_id != user.account_id
        or view.booking.practitioner_id != doctor.practitioner.id
    ):
        raise NotFound("Booking not found", page_message="Ce rendez-vous est introuvable.")
    shown = booking_views.render(view)
    await log_access(session, caller, "booking", [(shown.id, shown.territory_id)], "read")
    flash = take_flash(request)
    query = _query_without(request)
    response = page(
        "agenda_booked.html",
        200,
        agenda_user=user,
        doctor=doctor,
        b=shown,
        flash=flash,
        platform_told=get_settings().sas_platform_url is not None,  # as appointments.notify
        back=f"/agenda/{practitioner_id}" + (f"?{query}" if query else ""),
    )
    if flash is not None:
        response.delete_cookie(FLASH, path="/")
    return response
