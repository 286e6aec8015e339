"""The regulator account signed in on the agenda pages: its session cookie (SameSite=Lax: the
SAS platform sends the regulator here from another site), its CSRF token, where to go once
signed in, and the pages' message page."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from hashlib import sha256
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.responses import Response

from app.api.deps import SessionDep
from app.config import Settings
from app.sas_bridge import account_sign_in as sign_in
from app.sas_bridge.accounts import account_identifier
from app.web import session as web
from app.web.auth import safe_path
from app.web.render import page, redirect

COOKIE = "creneau_agenda"
LOGIN_CSRF = "creneau_agenda_login"
PSC_COOKIE = "creneau_psc"
HOME = "/agenda"


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def set_cookie(
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


def signer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(web.serializer().secret_key, salt)


def next_page(value: str | None) -> str:
    """Where to go once signed in: a booking page of this site, never elsewhere."""
    path = safe_path(value, HOME)
    if (path != HOME and not path.startswith(f"{HOME}/")) or path.startswith("/agenda/connexion"):
        return HOME
    return path


def sign_in_url(target: str) -> str:
    return f"/agenda/connexion?next={quote(target, safe='')}"


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
        value = signer("agenda").loads(raw, max_age=settings_of(request).session_hours * 3600)
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


def signed_in(request: Request, opened_id: uuid.UUID, target: str) -> Response:
    response = redirect(target)
    value = signer("agenda").dumps(str(opened_id))
    set_cookie(response, request, COOKIE, value, settings_of(request).session_hours * 3600, HOME)
    response.delete_cookie(LOGIN_CSRF, path=HOME)
    return response


def message_page(
    title: str, message: str, status: int, user: AgendaUser | None = None, **extra: Any
) -> Response:
    return page(
        "agenda_message.html", status, title=title, message=message, agenda_user=user, **extra
    )
