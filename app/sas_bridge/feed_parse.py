"""Reading agenda feeds into slots: iCalendar (RFC 5545, recurrences and time zones through
`icalendar` + `recurring-ical-events`) and FHIR Slot search Bundles. Anything doubtful makes
the whole feed fail with a reason a practice can act on; a feed is never half-read."""

from __future__ import annotations

import codecs
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
import x_wr_timezone

from app.sas_bridge.feed_fetch import FeedError
from app.sas_bridge.fhir_resources import MODALITY_CODE

MAX_EVENT = timedelta(hours=24)
# Occurrences looked at per slot allowed, and seconds of expansion: beyond either, a
# recurrence is taken as endless (a hostile feed must not cost more than this).
SCAN_FACTOR = 3
EXPANSION_SECONDS = 5.0
FHIR_MODALITY = {code: modality for modality, code in MODALITY_CODE.items()}
CATEGORY_MODALITY = {
    "cabinet": "cabinet",
    "visite": "visite",
    "visite à domicile": "visite",
    "teleconsultation": "teleconsultation",
    "téléconsultation": "teleconsultation",
}


@dataclass(frozen=True, order=True)
class FeedSlot:
    start: datetime  # aware
    end: datetime
    modality: str


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


def decode_text(body: bytes, content_type: str) -> str:
    charset = "utf-8"
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset" and value:
            charset = value.strip('"').lower()
    try:
        codecs.lookup(charset)
    except LookupError:
        raise FeedError(f"Unknown character set {charset!r}") from None
    try:
        return body.decode(charset).removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise FeedError(f"The feed is not valid {charset} text (byte {exc.start})") from None


def _looks_like_markup(text: str) -> bool:
    return text.lstrip()[:1] == "<"


def _cut(
    start: datetime, end: datetime, minutes: int | None
) -> Iterator[tuple[datetime, datetime]]:
    if not minutes:
        yield start, end
        return
    step = timedelta(minutes=minutes)
    # Cut in absolute time: a slot length is a duration, also across a DST change.
    at = start.astimezone(UTC)
    stop = end.astimezone(UTC)
    while at + step <= stop:
        yield at, at + step
        at += step


def _categories(event: icalendar.cal.Component) -> set[str]:
    raw = event.get("CATEGORIES")
    items = raw if isinstance(raw, list) else [raw] if raw is not None else []
    return {str(c).strip().lower() for item in items for c in getattr(item, "cats", [item])}


def _exact_durations(calendar: icalendar.Calendar) -> dict[str, timedelta]:
    """The DURATION of each event given by one (UID without overridden occurrences).

    recurring_ical_events turns a DURATION into a DTEND by wall-clock addition, which is
    wrong across a change of the clocks (RFC 5545: hours are elapsed time): the end is
    computed again from these."""
    durations: dict[str, timedelta] = {}
    overridden: set[str] = set()
    for event in calendar.walk("VEVENT"):
        uid = str(event.get("UID", ""))
        if event.get("RECURRENCE-ID") is not None:
            overridden.add(uid)
        elif event.get("DURATION") is not None and event.get("DTEND") is None:
            duration = event.decoded("DURATION")
            if isinstance(duration, timedelta):
                durations[uid] = duration
    return {uid: d for uid, d in durations.items() if uid not in overridden}


def _after(start: datetime, duration: timedelta) -> datetime:
    """RFC 5545: a duration's days are nominal (wall clock), hours and less exact. An aware
    datetime plus a timedelta adds wall-clock time: only the days go that way."""
    nominal = start + timedelta(days=duration.days)
    return nominal.astimezone(UTC) + timedelta(seconds=duration.seconds)


def _event_end(event: icalendar.cal.Component, start: datetime) -> datetime | None:
    if event.get("DTEND") is not None:
        end = event.decoded("DTEND")
        return end if isinstance(end, datetime) else None
    if event.get("DURATION") is not None:
        duration: timedelta = event.decoded("DURATION")
        return _after(start, duration)
    return None


def _check_recurrences(calendar: icalendar.Calendar) -> None:
    """Consultation slots never repeat every second or minute; such a rule is hostile or
    broken, and expanding it would cost CPU before any limit on slots could apply."""
    for event in calendar.walk("VEVENT"):
        rules = event.get("RRULE")
        for rule in rules if isinstance(rules, list) else [rules] if rules is not None else []:
            frequency = [str(f).upper() for f in rule.get("FREQ", [])]
            if {"SECONDLY", "MINUTELY"} & set(frequency):
                raise FeedError(
                    f"Event {event.get('UID', '?')} repeats {frequency[0].lower()}: "
                    "not a consultation agenda"
                )


def _check_time_zones(calendar: icalendar.Calendar) -> None:
    for event in calendar.walk("VEVENT"):
        for name in ("DTSTART", "DTEND"):
            prop = event.get(name)
            if prop is None:
                continue
            tzid = prop.params.get("TZID")
            if tzid and isinstance(prop.dt, datetime) and prop.dt.tzinfo is None:
                raise FeedError(
                    f"Unknown time zone {tzid!r} in event {event.get('UID', '?')}: "
                    "neither an IANA name nor a VTIMEZONE of the file"
                )


def parse_ical(
    body: bytes,
    content_type: str,
    *,
    tz: ZoneInfo,
    window: Window,
    category: str,
    modality: str,
    slot_minutes: int | None,
    max_slots: int,
) -> list[FeedSlot]:
    text = decode_text(body, content_type)
    if _looks_like_markup(text):
        raise FeedError("HTML instead of iCalendar: is the URL the calendar's export link?")
    if not text.lstrip().upper().startswith("BEGIN:VCALENDAR"):
        raise FeedError("Not an iCalendar file: it does not start with BEGIN:VCALENDAR")
    try:
        calendar = x_wr_timezone.to_standard(icalendar.Calendar.from_ical(text))
    except Exception as exc:  # the parser raises ValueError and others on broken input
        raise FeedError(f"Unreadable iCalendar: {str(exc)[:200]}") from None
    _check_time_zones(calendar)
    _check_recurrences(calendar)
    durations = _exact_durations(calendar)
    wanted = category.strip().lower()
    slots: set[FeedSlot] = set()
    scanned = 0
    deadline = time.monotonic() + EXPANSION_SECONDS
    try:
        occurrences = recurring_ical_events.of(calendar).after(window.start.astimezone(tz))
        for event in occurrences:
            scanned += 1
            if scanned > max_slots * SCAN_FACTOR or (
                scanned % 256 == 0 and time.monotonic() > deadline
            ):
                raise FeedError(
                    f"More than {max_slots * SCAN_FACTOR} events in the window, or too long to "
                    "expand: a recurrence without end at a very short interval?"
                )
            start = event.decoded("DTSTART")
            if not isinstance(start, datetime):
                continue  # all-day events are not consultation slots
            if start.tzinfo is None:
                start = start.replace(tzinfo=tz)  # floating time: the territory's clock
            if start >= window.end:
                break  # occurrences come in start order
            if str(event.get("STATUS", "")).upper() == "CANCELLED":
                continue
            categories = _categories(event)
            free = str(event.get("TRANSP", "")).upper() == "TRANSPARENT"
            if wanted not in categories and not free:
                continue
            exact = durations.get(str(event.get("UID", "")))
            end = _after(start, exact) if exact is not None else _event_end(event, start)
            if end is None:
                continue
            if end.tzinfo is None:
                end = end.replace(tzinfo=tz)
            # In UTC: two datetimes of one zone subtract by wall clock, not elapsed time.
            if not timedelta(0) < end.astimezone(UTC) - start.astimezone(UTC) <= MAX_EVENT:
                raise FeedError(
                    f"Event {event.get('UID', '?')} at {start.isoformat()} lasts "
                    f"{end - start}: a slot lasts more than nothing and at most 24 h"
                )
            kind = next(
                (CATEGORY_MODALITY[c] for c in sorted(categories) if c in CATEGORY_MODALITY),
                modality,
            )
            for piece_start, piece_end in _cut(start, end, slot_minutes):
                if piece_start < window.start:
                    continue
                slots.add(FeedSlot(piece_start.astimezone(UTC), piece_end.astimezone(UTC), kind))
                if len(slots) > max_slots:
                    raise FeedError(f"More than {max_slots} slots in the next days")
    except FeedError:
        raise
    except Exception as exc:  # recurrence expansion of a malformed RRULE, and the like
        raise FeedError(f"The recurrences cannot be expanded: {str(exc)[:200]}") from None
    return sorted(slots)


def _fhir_datetime(value: Any, what: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise FeedError(f"{what}: {value!r} is not a FHIR instant") from None
    if when.tzinfo is None:
        raise FeedError(f"{what}: {value!r} has no time zone offset")
    return when


def parse_fhir_page(
    body: bytes, content_type: str, *, window: Window, modality: str
) -> tuple[list[FeedSlot], str | None]:
    """The free slots of one Bundle page, and the URL of the next page if any."""
    text = decode_text(body, content_type)
    if _looks_like_markup(text):
        raise FeedError("HTML instead of a FHIR Bundle: is the URL a FHIR Slot search?")
    try:
        bundle = json.loads(text)
    except ValueError:
        raise FeedError("Not JSON: a FHIR Slot search answers a Bundle") from None
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FeedError("Not a FHIR Bundle")
    slots = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "Slot":
            continue  # included Schedules and the like
        if resource.get("status") != "free":
            continue
        what = f"Slot/{resource.get('id', '?')}"
        start = _fhir_datetime(resource.get("start"), f"{what}.start")
        end = _fhir_datetime(resource.get("end"), f"{what}.end")
        if not timedelta(0) < end - start <= MAX_EVENT:
            raise FeedError(f"{what} lasts {end - start}: at most 24 h, more than nothing")
        if start < window.start or start >= window.end:
            continue
        codes = [
            coding.get("code")
            for service in resource.get("serviceType") or []
            for coding in (service.get("coding") or [])
            if isinstance(coding, dict)
        ]
        kind = next((FHIR_MODALITY[c] for c in codes if c in FHIR_MODALITY), modality)
        slots.append(FeedSlot(start.astimezone(UTC), end.astimezone(UTC), kind))
    following = next(
        (
            link.get("url")
            for link in bundle.get("link") or []
            if isinstance(link, dict) and link.get("relation") == "next"
        ),
        None,
    )
    return slots, following
