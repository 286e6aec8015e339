"""What the two feed formats share (the slot read from a feed, the window, the text decoding)
and the FHIR Slot search Bundles. iCalendar is read in `feed_ical`. A feed-level problem makes
the whole feed fail with a reason a practice can act on; one slot that cannot be used is
skipped and reported, the others are read."""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.sas_bridge.feed_fetch import FeedError
from app.sas_bridge.fhir_resources import MODALITY_CODE

MAX_EVENT = timedelta(hours=24)
FHIR_MODALITY = {code: modality for modality, code in MODALITY_CODE.items()}
UTF8_NAMES = {"utf-8", "utf8", "us-ascii", "ascii"}


@dataclass(frozen=True, order=True)
class FeedSlot:
    start: datetime  # aware
    end: datetime
    modality: str
    uid: str = ""  # the iCalendar event (UID) or FHIR Slot (id) it comes from


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


def decode_text(body: bytes, content_type: str) -> tuple[str, str]:
    """The text of a feed and the encoding it was read with. A byte-order mark or the
    Content-Type's charset decides; without either, utf-8, and when the bytes are not utf-8,
    windows-1252 (what Windows agenda programs write), noted as a guess. A declared utf-8
    that the bytes contradict is read as windows-1252 too (servers often claim utf-8)."""
    if body.startswith(codecs.BOM_UTF8):
        charset, body, note = "utf-8", body[len(codecs.BOM_UTF8) :], "utf-8 (byte-order mark)"
    elif body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        charset, note = "utf-16", "utf-16 (byte-order mark)"
    else:
        charset, note = "", ""
        for param in content_type.split(";")[1:]:
            name, _, value = param.strip().partition("=")
            if name.lower() == "charset" and value:
                charset = value.strip().strip('"').lower()
                note = f"{charset} (declared)"
    if charset:
        try:
            codecs.lookup(charset)
        except LookupError:
            raise FeedError(f"Unknown character set {charset!r}") from None
        try:
            return body.decode(charset).removeprefix("\ufeff"), note
        except UnicodeDecodeError as exc:
            if charset not in UTF8_NAMES:
                raise FeedError(
                    f"The feed is not valid {charset} text (byte {exc.start})"
                ) from None
            guess = f"windows-1252 (guessed: not valid {charset} as declared)"
    else:
        try:
            return body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            guess = "windows-1252 (guessed: not valid utf-8, no charset declared)"
    try:
        return body.decode("windows-1252"), guess
    except UnicodeDecodeError as exc:
        raise FeedError(
            f"The feed is not valid utf-8 text, nor windows-1252 (byte {exc.start})"
        ) from None


def looks_like_markup(text: str) -> bool:
    return text.lstrip()[:1] == "<"


class SlotProblem(Exception):
    """Why one FHIR Slot cannot be imported; it is skipped and reported."""


def _fhir_datetime(value: Any, what: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise SlotProblem(f"{what} {str(value)[:40]!r} is not a FHIR instant") from None
    if when.tzinfo is None:
        raise SlotProblem(f"{what} {str(value)[:40]!r} has no time zone offset")
    return when


def _fhir_slot(
    resource: dict[str, Any], window: Window, modality: str, what: str
) -> FeedSlot | None:
    start = _fhir_datetime(resource.get("start"), "start")
    end = _fhir_datetime(resource.get("end"), "end")
    if start >= window.end or end <= window.start or start < window.start:
        return None
    if not timedelta(0) < end - start <= MAX_EVENT:
        raise SlotProblem(f"lasts {end - start}: a slot lasts more than nothing and at most 24 h")
    codes = [
        coding.get("code")
        for service in resource.get("serviceType") or []
        if isinstance(service, dict)
        for coding in (service.get("coding") or [])
        if isinstance(coding, dict)
    ]
    kind = next((FHIR_MODALITY[c] for c in codes if c in FHIR_MODALITY), modality)
    return FeedSlot(start.astimezone(UTC), end.astimezone(UTC), kind, what)


@dataclass
class FhirPage:
    slots: list[FeedSlot]
    skipped: list[dict[str, Any]]
    following: str | None
    encoding: str


def parse_fhir_page(body: bytes, content_type: str, *, window: Window, modality: str) -> FhirPage:
    """The free slots of one Bundle page, the slots skipped, and the next page's URL if any."""
    text, encoding = decode_text(body, content_type)
    if looks_like_markup(text):
        raise FeedError("HTML instead of a FHIR Bundle: is the URL a FHIR Slot search?")
    try:
        bundle = json.loads(text)
    except ValueError:
        raise FeedError("Not JSON: a FHIR Slot search answers a Bundle") from None
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FeedError("Not a FHIR Bundle")
    slots: list[FeedSlot] = []
    skipped: list[dict[str, Any]] = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "Slot":
            continue  # included Schedules and the like
        if resource.get("status") != "free":
            continue
        what = f"Slot/{str(resource.get('id', '?'))[:64]}"
        try:
            slot = _fhir_slot(resource, window, modality, what)
        except SlotProblem as problem:
            start = resource.get("start")
            skipped.append(
                {
                    "uid": what,
                    "start": str(start)[:40] if start is not None else None,
                    "reason": problem.args[0],
                    "occurrences": 1,
                }
            )
            continue
        if slot is not None:
            slots.append(slot)
    following = next(
        (
            link.get("url")
            for link in bundle.get("link") or []
            if isinstance(link, dict) and link.get("relation") == "next"
        ),
        None,
    )
    return FhirPage(slots, skipped, following if isinstance(following, str) else None, encoding)
