"""Sign-in and sign-out of the web pages, and what every page handler needs from them: the
signed-in person (the same `Caller` the API builds from a key, so a page can never do what
the API refuses), the CSRF check of every form, form parsing and one-shot flash messages."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.responses import Response

from app.api.deps import SessionDep
from app.clock import now_utc
from app.config import get_settings
from app.errors import Forbidden, Unauthorized
from app.security import ADMIN, COORDINATOR, DASHBOARD, PRACTICE, REGULATOR, Caller
from app.web import session as web
from app.web.render import page, redirect

router = APIRouter(include_in_schema=False)
LOGIN_CSRF = "creneau_login"
FLASH = "creneau_flash"
FAILURES = web.FailedSignIns()

HOMES = {
    PRACTICE: "/cabinet",
    REGULATOR: "/regulation",
    COORDINATOR: "/coordination",
    DASHBOARD: "/dashboard",
    ADMIN: "/coordination/annuaire",
}


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def safe_path(value: str | None, default: str = "/accueil") -> str:
    """Only a path of this site: never an absolute or protocol-relative URL."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return default


class Form:
    """An urlencoded form body; a name may repeat (checkboxes)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.pairs:
            if key == name:
                return value.strip()
        return default

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]

    def values(self) -> dict[str, str]:
        """Every field once (the first value), trimmed: to fill a form again."""
        out: dict[str, str] = {}
        for key, value in self.pairs:
            out.setdefault(key, value.strip())
        return out


async def read_form(request: Request) -> Form:
    body = (await request.body()).decode("utf-8", errors="replace")
    return Form(parse_qsl(body, keep_blank_values=True))


def read_session(request: Request) -> web.WebSession | None:
    return web.decode(request.cookies.get(web.COOKIE))


# The signed-in person -------------------------------------------------------------------


@dataclass(frozen=True)
class WebUser:
    session: web.WebSession
    caller: Caller

    @property
    def role(self) -> str:
        return self.caller.role


async def web_user(request: Request, session: SessionDep) -> WebUser:
    """The person behind the session cookie; a missing, expired or tampered cookie, or a
    revoked key, sends them to the sign-in page (app.errors renders the 401 as a redirect).
    The key's rate limit applies to pages as to the API."""
    current = read_session(request)
    caller = await web.caller_for(session, current) if current else None
    if current is None or caller is None:
        raise Unauthorized("Sign-in required")
    request.app.state.rate_limiter.check(caller.key_id)
    return WebUser(current, caller)


UserDep = Annotated[WebUser, Depends(web_user)]


async def posted_form(request: Request, user: UserDep) -> Form:
    """The body of a POSTed form, once its CSRF token is checked against the session."""
    form = await read_form(request)
    if not user.session.check_csrf(form.get("csrf")):
        raise Forbidden(
            "Missing or invalid CSRF token",
            page_message="Le jeton de sécurité du formulaire est absent ou invalide : "
            "rechargez la page et recommencez.",
        )
    return form


FormDep = Annotated[Form, Depends(posted_form)]


def require_role(user: WebUser, *roles: str) -> None:
    if user.role not in roles:
        raise Forbidden(
            f"This page needs one of the roles {', '.join(roles)}",
            page_message="Cette page n'est pas ouverte à votre accès.",
        )


# Flash messages: one line shown once on the page a form redirects to ---------------------


def _flash_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(web.serializer().secret_key, "flash")


def with_flash(response: Response, request: Request, message: str) -> Response:
    _cookie(response, request, FLASH, _flash_signer().dumps(message), 120)
    return response


def take_flash(request: Request) -> str | None:
    raw = request.cookies.get(FLASH)
    if not raw:
        return None
    try:
        message = _flash_signer().loads(raw, max_age=120)
    except BadSignature:
        return None
    return message if isinstance(message, str) else None


def show(
    request: Request, user: WebUser, template: str, status: int = 200, **context: object
) -> Response:
    """A page for a signed-in person: the header's sign-out form, the navigation of the role
    and the flash message left by the previous form, if any (then forgotten)."""
    flash = take_flash(request)
    response = page(
        template, status, web_session=user.session, role=user.role, flash=flash, **context
    )
    if FLASH in request.cookies:
        response.delete_cookie(FLASH, path="/")
    return response


def done(request: Request, url: str, message: str) -> Response:
    """POST-redirect-GET with a message shown once on the next page."""
    return with_flash(redirect(url), request, message)


# Routes -----------------------------------------------------------------------------------


def _sign_in_page(request: Request, next_: str, error: str | None, status: int) -> Response:
    token = secrets.token_urlsafe(24)
    response = page("sign_in.html", status, csrf=token, next=next_, error=error)
    _cookie(response, request, LOGIN_CSRF, token, 3600)
    return response


@router.get("/connexion")
async def sign_in_form(request: Request, next: str | None = None) -> Response:
    return _sign_in_page(request, safe_path(next), None, 200)


@router.post("/connexion")
async def sign_in(request: Request, session: SessionDep) -> Response:
    form = await read_form(request)
    next_ = safe_path(form.get("next"))
    expected = request.cookies.get(LOGIN_CSRF)
    if not expected or not secrets.compare_digest(expected, form.get("csrf")):
        return _sign_in_page(request, next_, "La page a expiré : veuillez réessayer.", 403)
    address = request.client.host if request.client else "?"
    await FAILURES.wait(address)
    caller = await web.sign_in(session, form.get("key"))
    if caller is None:
        FAILURES.failed(address)
        return _sign_in_page(request, next_, "Clé inconnue ou révoquée.", 401)
    FAILURES.succeeded(address)
    response = redirect(next_)
    hours = get_settings().session_hours
    _cookie(response, request, web.COOKIE, web.encode(caller.key_id, caller.role), hours * 3600)
    response.delete_cookie(LOGIN_CSRF, path="/")
    return response


@router.post("/deconnexion")
async def sign_out(request: Request, session: SessionDep) -> Response:
    current = read_session(request)
    form = await read_form(request)
    if current is None or not current.check_csrf(form.get("csrf")):
        return page(
            "message.html",
            403,
            title="Action refusée",
            message="Le jeton de sécurité du formulaire est absent ou invalide.",
        )
    # Ended on the server: a copy of the cookie (and its CSRF token) no longer opens anything.
    await web.end(session, current, now_utc())
    response = redirect("/connexion")
    response.delete_cookie(web.COOKIE, path="/")
    return response


@router.get("/")
@router.get("/accueil")
async def home(user: UserDep) -> Response:
    """Each role lands on its own home page."""
    target = HOMES.get(user.role)
    if target is None:
        return page(
            "message.html",
            403,
            web_session=user.session,
            title="Pas de pages pour cet accès",
            message="Cet accès sert aux échanges entre logiciels ; il n'a pas de pages.",
        )
    return redirect(target)
