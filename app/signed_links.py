"""Signed, expiring links the service e-mails (a call for slots, a crisis call): a token names
two ids and its expiry, with an HMAC-SHA256 of them under the app's secret (the sign-in
cookies' secret, `SESSION_SECRET`) and a purpose string, so that a token signed for one
purpose is not valid for another. Changing any part of a token breaks the HMAC."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime

from app.app_secret import app_secret
from app.config import Settings


class LinkInvalid(Exception):
    """Not a link this app signed for this purpose (tampered, truncated, another secret)."""


class LinkExpired(Exception):
    """A link this app signed, past its expiry."""


def secret(settings: Settings) -> bytes:
    """The app's secret: the one that signs the sign-in cookies."""
    return app_secret(settings).encode()


def _mac(key: bytes, purpose: str, payload: str) -> str:
    digest = hmac.new(key, f"{purpose}:{payload}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(key: bytes, purpose: str, first: uuid.UUID, second: uuid.UUID, expires: datetime) -> str:
    payload = f"{first}.{second}.{int(expires.timestamp())}"
    return f"{payload}.{_mac(key, purpose, payload)}"


def read(key: bytes, purpose: str, value: str, now: datetime) -> tuple[uuid.UUID, uuid.UUID]:
    """The two ids a token names; LinkInvalid or LinkExpired otherwise."""
    parts = value.split(".")
    if len(parts) != 4 or len(value) > 200:
        raise LinkInvalid
    payload, mac = ".".join(parts[:3]), parts[3]
    if not hmac.compare_digest(mac.encode(), _mac(key, purpose, payload).encode()):
        raise LinkInvalid
    try:
        first, second = uuid.UUID(parts[0]), uuid.UUID(parts[1])
        expires = datetime.fromtimestamp(int(parts[2]), UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise LinkInvalid from exc
    if now >= expires:
        raise LinkExpired
    return first, second
