"""The signed, expiring link of a call for slots: it leads the called GP's practice to a
prefilled one-off slot form (the practice still signs in). The token names the call and the
GP and when it expires, with an HMAC-SHA256 of them under the app's secret (the sign-in
cookies' secret, `SESSION_SECRET`); changing any part of it breaks the HMAC."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from app.app_secret import app_secret
from app.config import Settings

VALID_HOURS = 48
PATH = "/cabinet/appel-creneaux"


class LinkInvalid(Exception):
    """Not a link this app signed (tampered, truncated, or signed under another secret)."""


class LinkExpired(Exception):
    """A link this app signed, past its expiry."""


def secret(settings: Settings) -> bytes:
    """The app's secret: the one that signs the sign-in cookies."""
    return app_secret(settings).encode()


def expiry(sent_at: datetime) -> datetime:
    return sent_at + timedelta(hours=VALID_HOURS)


def _mac(key: bytes, payload: str) -> str:
    digest = hmac.new(key, f"slot-call-link:{payload}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def token(key: bytes, call_id: uuid.UUID, practitioner_id: uuid.UUID, sent_at: datetime) -> str:
    payload = f"{call_id}.{practitioner_id}.{int(expiry(sent_at).timestamp())}"
    return f"{payload}.{_mac(key, payload)}"


def read(key: bytes, value: str, now: datetime) -> tuple[uuid.UUID, uuid.UUID]:
    """The call and the GP a link names; LinkInvalid or LinkExpired otherwise."""
    parts = value.split(".")
    if len(parts) != 4 or len(value) > 200:
        raise LinkInvalid
    payload, mac = ".".join(parts[:3]), parts[3]
    if not hmac.compare_digest(mac.encode(), _mac(key, payload).encode()):
        raise LinkInvalid
    try:
        call_id, practitioner_id = uuid.UUID(parts[0]), uuid.UUID(parts[1])
        expires = datetime.fromtimestamp(int(parts[2]), UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise LinkInvalid from exc
    if now >= expires:
        raise LinkExpired
    return call_id, practitioner_id


def url(
    settings: Settings, call_id: uuid.UUID, practitioner_id: uuid.UUID, sent_at: datetime
) -> str:
    signed = token(secret(settings), call_id, practitioner_id, sent_at)
    return f"{settings.public_base_url}{PATH}?jeton={quote(signed)}"
