"""Reading an iCalendar feed into slots, event by event (RFC 5545; recurrences and time zones
through `icalendar` + `recurring-ical-events`).

A feed-level problem (not a calendar, too many slots, too long to expand) fails the whole
feed with a reason. A problem of one event (a slot of two days or of 0 minutes, an unknown or
blank time zone, a date that cannot be read, a recurrence every minute) only skips that event,
which is reported with its UID, its start and the reason; the other events are read. No
exception of a parser escapes: whatever cannot be read is a skipped event or a `FeedError`.

Only the events that could be slots (in the feed's category, or marked free) are expanded,
all-day events never, and every expansion stops at the end of the window: a practice's
"pay the rent" all-day event repeating monthly forever costs nothing."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
import x_wr_timezone

from app.sas_bridge.feed_fetch import FeedError
from app.sas_bridge.feed_ical_text import parse_text, repair, set_aside
from app.sas_bridge.feed_parse import MAX_EVENT, FeedSlot, Window, decode_text, looks_like_markup

# Occurrences looked at per slot allowed, and seconds of expansion: beyond either, the feed
# is taken as hostile (a feed must not cost more than this).
SCAN_FACTOR = 3
EXPANSION_SECONDS = 5.0
SKIPPED_KEPT = 200  # distinct skipped events listed on an import (all are counted)
CATEGORY_MODALITY = {
    "cabinet": "cabinet",
    "visite": "visite",
    "visite à domicile": "visite",
    "teleconsultation": "teleconsultation",
    "téléconsultation": "teleconsultation",
}
# Properties whose value must have been read for the event to be used.
TIME_PROPERTIES = ("DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID")


class EventProblem(Exception):
    """Why one event cannot be a slot; the event is skipped and reported."""


@dataclass
class Skipped:
    uid: str
    start: str | None  # local ISO time of the first occurrence concerned
    reason: str
    occurrences: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "start": self.start,
            "reason": self.reason,
            "occurrences": self.occurrences,
        }


@dataclass
class IcalFeed:
    slots: list[FeedSlot]
    skipped: list[Skipped]
    encoding: str
    events: int = 0  # VEVENT components read
    skipped_events: int = 0  # all of them, also beyond the ones listed

    @property
    def skipped_list(self) -> list[dict[str, Any]]:
        return [s.as_dict() for s in self.skipped]


@dataclass
class _Reader:
    tz: ZoneInfo
    window: Window
    category: str
    modality: str
    slot_minutes: int | None
    max_slots: int
    slots: set[FeedSlot] = field(default_factory=set)
    pending: list[FeedSlot] = field(default_factory=list)  # of the group being read
    skipped: dict[tuple[str, str], Skipped] = field(default_factory=dict)
    scanned: int = 0
    deadline: float = 0.0

    # -- reporting ------------------------------------------------------------------------

    def skip(self, uid: str, start: datetime | date | None, reason: str) -> None:
        key = (uid, reason)
        if key in self.skipped:
            self.skipped[key].occurrences += 1
            return
        when = None
        if isinstance(start, datetime):
            when = (start if start.tzinfo else start.replace(tzinfo=self.tz)).astimezone(self.tz)
            when_text: str | None = when.isoformat()
        elif isinstance(start, date):
            when_text = start.isoformat()
        else:
            when_text = None
        self.skipped[key] = Skipped(uid, when_text, reason[:300])

    # -- one group of components with the same UID ---------------------------------------

    def wanted(self, event: icalendar.cal.Component) -> bool:
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            return False
        free = str(event.get("TRANSP", "")).upper() == "TRANSPARENT"
        return free or self.category in _categories(event)

    def read_group(self, uid: str, events: list[icalendar.cal.Component]) -> None:
        candidates = [e for e in events if self.wanted(e)]
        if not candidates:
            return  # busy time, cancelled, another category: not slots, nothing to expand
        masters = [e for e in events if e.get("RECURRENCE-ID") is None] or events
        first = masters[0]
        if any(name == "DTSTART" for name, _ in first.errors):
            raise EventProblem("DTSTART cannot be read")
        start = first.get("DTSTART")
        if start is None:
            raise EventProblem("no start (DTSTART)")
        if not isinstance(start.dt, datetime):
            # All-day events are never slots; skipped before any expansion. Only those the
            # practice put in the slots' category are reported (free all-day events, such as
            # birthdays and holidays, are simply not slots).
            if any(self.category in _categories(e) for e in events) and (
                _recurs(first) or self.window.start.date() <= start.dt < self.window.end.date()
            ):
                self.skip(uid, start.dt, "all-day event: not a consultation slot")
            return
        for event in events:
            broken = [name for name, _ in event.errors if name in TIME_PROPERTIES]
            if broken:
                raise EventProblem(f"{broken[0]} cannot be read")
        for event in masters:
            _check_frequency(event)
        if len(events) == 1 and not _recurs(first):
            occurrences: Iterable[icalendar.cal.Component] = events
        else:
            calendar = icalendar.Calendar()
            for event in events:
                calendar.add_component(event)
            occurrences = recurring_ical_events.of(calendar).between(
                self.window.start.astimezone(self.tz), self.window.end.astimezone(self.tz)
            )
        exact = _exact_duration(first) if len(masters) == len(events) else None
        for occurrence in occurrences:
            try:
                self.occurrence(uid, occurrence, exact)
            except EventProblem as problem:  # this occurrence only
                self.skip(uid, _problem_start(problem), problem.args[0])

    def occurrence(
        self, uid: str, event: icalendar.cal.Component, exact: timedelta | None = None
    ) -> None:
        """One occurrence; `exact` is its event's DURATION when it has one and no occurrence
        was moved (recurring_ical_events adds a DURATION by wall clock: see _after)."""
        self.scanned += 1
        if self.scanned > self.max_slots * SCAN_FACTOR or (
            self.scanned % 256 == 0 and time.monotonic() > self.deadline
        ):
            raise FeedError(
                f"More than {self.max_slots * SCAN_FACTOR} events in the window, or too long "
                "to expand: a recurrence without end at a very short interval?"
            )
        if not self.wanted(event):
            return  # an occurrence moved out of the category, or cancelled
        prop = event.get("DTSTART")
        start = prop.dt if prop is not None else None
        if not isinstance(start, datetime):
            return  # an occurrence moved to a whole day
        start = self.aware(start, prop.params.get("TZID"), "DTSTART")
        if start >= self.window.end:
            return
        end = _after(start, exact) if exact is not None else self.end(event, start)
        if end <= self.window.start:
            return
        # In UTC: two datetimes of one zone subtract by wall clock, not elapsed time.
        length = end.astimezone(UTC) - start.astimezone(UTC)
        if length <= timedelta(0):
            reason = "ends before it starts" if length < timedelta(0) else "lasts 0 minutes"
            raise EventProblem(f"{reason}: not a slot", start)
        if length > MAX_EVENT:
            raise EventProblem(f"lasts {_duration(length)}: a slot lasts at most 24 h", start)
        if self.slot_minutes and length < timedelta(minutes=self.slot_minutes):
            raise EventProblem(
                f"lasts {_duration(length)}, shorter than the feed's slot length "
                f"({self.slot_minutes} min)",
                start,
            )
        categories = _categories(event)
        kind = next(
            (CATEGORY_MODALITY[c] for c in sorted(categories) if c in CATEGORY_MODALITY),
            self.modality,
        )
        for piece_start, piece_end in _cut(start, end, self.slot_minutes):
            if piece_start < self.window.start or piece_start >= self.window.end:
                continue
            self.pending.append(
                FeedSlot(piece_start.astimezone(UTC), piece_end.astimezone(UTC), kind, uid)
            )
            if len(self.slots) + len(self.pending) > self.max_slots:
                raise FeedError(f"More than {self.max_slots} slots in the next days")

    def aware(self, when: datetime, tzid: Any, name: str) -> datetime:
        if when.tzinfo is not None:
            return when
        if tzid is not None and not str(tzid).strip():
            raise EventProblem(f"blank time zone (TZID) in {name}", when)
        if tzid:
            raise EventProblem(
                f"unknown time zone {str(tzid)[:60]!r}: neither an IANA name nor a VTIMEZONE "
                "of the file",
                when,
            )
        return when.replace(tzinfo=self.tz)  # floating time: the territory's clock

    def end(self, event: icalendar.cal.Component, start: datetime) -> datetime:
        prop = event.get("DTEND")
        if prop is not None:
            end = prop.dt
            if not isinstance(end, datetime):
                raise EventProblem("ends on a date, not a time", start)
            return self.aware(end, prop.params.get("TZID"), "DTEND")
        if event.get("DURATION") is not None:
            duration = event.decoded("DURATION")
            if not isinstance(duration, timedelta):
                raise EventProblem("DURATION cannot be read", start)
            return _after(start, duration)
        return start  # RFC 5545: no DTEND nor DURATION, a date-time start lasts nothing


def _exact_duration(event: icalendar.cal.Component) -> timedelta | None:
    """The event's DURATION when it gives one instead of a DTEND."""
    if event.get("DURATION") is None or event.get("DTEND") is not None:
        return None
    try:
        duration = event.decoded("DURATION")
    except Exception:  # an unreadable DURATION is reported by self.end
        return None
    return duration if isinstance(duration, timedelta) else None


def _after(start: datetime, duration: timedelta) -> datetime:
    """RFC 5545: a duration's days are nominal (wall clock), its hours and less elapsed time.
    An aware datetime plus a timedelta adds wall-clock time: only the days go that way, so a
    2-hour event from 01:30 on the night the clocks go back ends at 02:30+01:00."""
    nominal = start + timedelta(days=duration.days)
    return nominal.astimezone(UTC) + timedelta(seconds=duration.seconds)


def _problem_start(exc: EventProblem) -> datetime | None:
    return exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], datetime) else None


def _duration(length: timedelta) -> str:
    if length >= timedelta(days=1) and length % timedelta(days=1) == timedelta(0):
        return f"{length.days} days"
    minutes = length.total_seconds() / 60
    return f"{minutes / 60:g} h" if minutes >= 60 else f"{minutes:g} min"


def _recurs(event: icalendar.cal.Component) -> bool:
    return any(event.get(name) is not None for name in ("RRULE", "RDATE", "EXRULE"))


def _check_frequency(event: icalendar.cal.Component) -> None:
    """Consultation slots never repeat every second or minute; such a rule is broken or
    hostile, and expanding it would cost CPU before any limit could apply."""
    rules = event.get("RRULE")
    for rule in rules if isinstance(rules, list) else [rules] if rules is not None else []:
        frequency = {str(f).upper() for f in rule.get("FREQ", [])}
        if frequency & {"SECONDLY", "MINUTELY"}:
            repeat = "every second" if "SECONDLY" in frequency else "every minute"
            raise EventProblem(f"repeats {repeat}: not a consultation slot")


def _categories(event: icalendar.cal.Component) -> set[str]:
    raw = event.get("CATEGORIES")
    items = raw if isinstance(raw, list) else [raw] if raw is not None else []
    return {str(c).strip().lower() for item in items for c in getattr(item, "cats", [item])}


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


def _groups(
    calendars: Iterable[icalendar.Calendar],
) -> tuple[dict[str, list[icalendar.cal.Component]], int]:
    groups: dict[str, list[icalendar.cal.Component]] = {}
    count = 0
    for calendar in calendars:
        try:
            calendar = x_wr_timezone.to_standard(calendar)
        except Exception as exc:
            raise FeedError(f"X-WR-TIMEZONE cannot be applied: {str(exc)[:200]}") from None
        for event in calendar.walk("VEVENT"):
            count += 1
            uid = str(event.get("UID", "")).strip() or f"(event {count} without UID)"
            groups.setdefault(uid, []).append(event)
    return groups, count


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
) -> IcalFeed:
    text, encoding = decode_text(body, content_type)
    if looks_like_markup(text):
        raise FeedError("HTML instead of iCalendar: is the URL the calendar's export link?")
    if not text.lstrip().upper().startswith("BEGIN:VCALENDAR"):
        raise FeedError("Not an iCalendar file: it does not start with BEGIN:VCALENDAR")
    text, set_apart = set_aside(repair(text), category.strip().lower())
    calendars, broken = parse_text(text)
    groups, count = _groups(calendars)
    count += set_apart
    reader = _Reader(tz, window, category.strip().lower(), modality, slot_minutes, max_slots)
    for position, reason in broken:
        reader.skip(f"(unreadable event {position + 1})", None, reason)
    reader.deadline = time.monotonic() + EXPANSION_SECONDS
    for uid, events in groups.items():
        reader.pending = []
        try:
            reader.read_group(uid, events)
        except FeedError:
            raise
        except EventProblem as problem:  # the whole event (all its occurrences) is skipped
            reader.skip(uid, _problem_start(problem) or _start_of(events), problem.args[0])
            continue
        except Exception as exc:  # whatever a library raises on one event skips that event
            reader.skip(uid, _start_of(events), f"cannot be read: {str(exc)[:150]}")
            continue
        reader.slots.update(reader.pending)
    skipped = list(reader.skipped.values())
    return IcalFeed(
        sorted(reader.slots),
        skipped[:SKIPPED_KEPT],
        encoding,
        events=count + len(broken),
        skipped_events=len(skipped),
    )


def _start_of(events: list[icalendar.cal.Component]) -> datetime | date | None:
    try:
        value = events[0].get("DTSTART")
        return value.dt if value is not None and isinstance(value.dt, date) else None
    except Exception:
        return None
