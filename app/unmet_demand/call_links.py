"""The signed, expiring link of a call for slots: it leads the called GP's practice to a
prefilled one-off slot form (the practice still signs in). The token names the call and the
GP and when it expires, with an HMAC-SHA256 of them under the app's secret (the sign-in
cookies' secret, `SESSION_SECRET`; app.signed_links); changing any part of it breaks the HMAC."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from urllib.parse import quote

from app import signed_links
from app.config import Settings
from app.signed_links import LinkExpired, LinkInvalid, secret

__all__ = [
    "PATH",
    "VALID_HOURS",
    "LinkExpired",
    "LinkInvalid",
    "expiry",
    "read",
    "secret",
    "token",
    "url",
]

VALID_HOURS = 48
PATH = "/cabinet/appel-creneaux"
PURPOSE = "slot-call-link"


def expiry(sent_at: datetime) -> datetime:
    return sent_at + timedelta(hours=VALID_HOURS)


def token(key: bytes, call_id: uuid.UUID, practitioner_id: uuid.UUID, sent_at: datetime) -> str:
    return signed_links.sign(key, PURPOSE, call_id, practitioner_id, expiry(sent_at))


def read(key: bytes, value: str, now: datetime) -> tuple[uuid.UUID, uuid.UUID]:
    """The call and the GP a link names; LinkInvalid or LinkExpired otherwise."""
    return signed_links.read(key, PURPOSE, value, now)


def url(
    settings: Settings, call_id: uuid.UUID, practitioner_id: uuid.UUID, sent_at: datetime
) -> str:
    signed = token(secret(settings), call_id, practitioner_id, sent_at)
    return f"{settings.public_base_url}{PATH}?jeton={quote(signed)}"
