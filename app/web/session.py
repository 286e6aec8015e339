"""Sign-in for the web pages: a person signs in once with their API key and gets a signed,
HttpOnly, SameSite=Strict cookie holding the key's id (never the key) and an expiry. Every
form carries a CSRF token bound to the session. Wrong keys are slowed down per address."""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from hashlib import sha256

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.app_secret import app_secret
from app.config import Settings, get_settings
from app.directory.callers import authenticate, caller_from_key
from app.directory.models import ApiKey, EndedWebSession
from app.errors import Unauthorized
from app.security import Caller

COOKIE = "creneau_session"


def serializer(settings: Settings | None = None) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(app_secret(settings), "session")


@dataclass(frozen=True)
class WebSession:
    key_id: uuid.UUID
    nonce: str
    # The key's role when the session began: only for drawing the menu on pages that do not
    # look the key up (an unknown address); every page checks the key itself.
    menu_role: str | None = None

    @property
    def csrf(self) -> str:
        mac = hmac.new(serializer().secret_key, f"csrf:{self.nonce}".encode(), sha256)
        return mac.hexdigest()

    def check_csrf(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token, self.csrf)


def encode(key_id: uuid.UUID, role: str | None = None) -> str:
    return serializer().dumps({"k": str(key_id), "n": secrets.token_urlsafe(16), "r": role})


def decode(cookie: str | None) -> WebSession | None:
    if not cookie:
        return None
    try:
        data = serializer().loads(cookie, max_age=get_settings().session_hours * 3600)
        role = data.get("r")
        return WebSession(uuid.UUID(data["k"]), data["n"], role if isinstance(role, str) else None)
    except (BadSignature, KeyError, ValueError, TypeError):
        return None


def _nonce_digest(nonce: str) -> str:
    return sha256(nonce.encode()).hexdigest()


async def caller_for(session: AsyncSession, web: WebSession) -> Caller | None:
    """The caller behind a session; None once the key is revoked or the session signed out."""
    ended = exists().where(EndedWebSession.nonce_digest == _nonce_digest(web.nonce))
    key = await session.scalar(
        select(ApiKey).where(ApiKey.id == web.key_id, ApiKey.revoked_at.is_(None), ~ended)
    )
    if key is None:
        return None
    return await caller_from_key(session, key)


async def end(session: AsyncSession, web: WebSession, now: datetime) -> None:
    """End the session on the server (sign-out): its cookie and CSRF token stop working on
    every worker. Rows of sessions that have expired anyway go at the same time."""
    await session.execute(delete(EndedWebSession).where(EndedWebSession.expires_at < now))
    await session.execute(
        insert(EndedWebSession)
        .values(
            nonce_digest=_nonce_digest(web.nonce),
            key_id=web.key_id,
            expires_at=now + timedelta(hours=get_settings().session_hours),
        )
        .on_conflict_do_nothing()
    )


class FailedSignIns:
    """Per-address failures; each costs a growing delay (capped), reset by a success."""

    def __init__(self) -> None:
        self._failures: dict[str, tuple[int, float]] = defaultdict(lambda: (0, 0.0))

    def delay(self, address: str) -> float:
        count, last = self._failures[address]
        if time.monotonic() - last > 900:
            return 0.0
        return min(8.0, 0.25 * 2**count) if count else 0.0

    async def wait(self, address: str) -> None:
        pause = self.delay(address)
        if pause:
            await asyncio.sleep(pause)

    def failed(self, address: str) -> None:
        count, _ = self._failures[address]
        self._failures[address] = (count + 1, time.monotonic())

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)


async def sign_in(session: AsyncSession, key: str) -> Caller | None:
    try:
        return await authenticate(session, f"Bearer {key.strip()}")
    except Unauthorized:
        return None
