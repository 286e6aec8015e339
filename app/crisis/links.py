"""The signed link of a crisis call: it leads the called GP's practice (signed in) to its
pledged capacity, prefilled, to open in one step. It names the call and the GP, and is valid
until the crisis' expected end (app.signed_links, its own purpose string: a call-for-slots
token is not a crisis token)."""

from __future__ import annotations

import uuid
from datetime import datetime
from urllib.parse import quote

from app import signed_links
from app.config import Settings

PATH = "/cabinet/crise"
PURPOSE = "crisis-call-link"


def token(key: bytes, call_id: uuid.UUID, practitioner_id: uuid.UUID, until: datetime) -> str:
    return signed_links.sign(key, PURPOSE, call_id, practitioner_id, until)


def read(key: bytes, value: str, now: datetime) -> tuple[uuid.UUID, uuid.UUID]:
    """The call and the GP a link names; signed_links.LinkInvalid or LinkExpired otherwise."""
    return signed_links.read(key, PURPOSE, value, now)


def url(settings: Settings, call_id: uuid.UUID, practitioner_id: uuid.UUID, until: datetime) -> str:
    signed = token(signed_links.secret(settings), call_id, practitioner_id, until)
    return f"{settings.public_base_url}{PATH}?jeton={quote(signed)}"
