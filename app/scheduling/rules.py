"""Availability rules: validation and DST-correct expansion into slots.

A rule is an RFC 5545 RRULE (without DTSTART) giving the *days* on which a period starts, plus
local wall-clock start and end times in the territory's IANA zone. Each period is cut into
consecutive slots in absolute time, so a 20:00–08:00 night is 13 hours long when the clocks go
back and 11 hours when they go forward, while 17:00 stays 17:00 on both sides of a change."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr

_ALLOWED_FREQS = {DAILY, WEEKLY, MONTHLY, YEARLY}
_FORBIDDEN_PARTS = ("BYHOUR", "BYMINUTE", "BYSECOND")
_PART = re.compile(r"^[A-Z]+=[A-Z0-9,+\-:]+$")


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """A territory's IANA zone, by name (one ZoneInfo each)."""
    return ZoneInfo(name)


class RuleError(ValueError):
    """A rule that cannot be accepted; `field` names the input field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class RuleSpec:
    rrule: str
    start_time: time
    end_time: time
    slot_minutes: int
    valid_from: date
    valid_until: date | None


def _body(text: str) -> str:
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    return body


def nominal_period_minutes(start_time: time, end_time: time) -> int:
    """Wall-clock length of the period; an end at or before the start is on the next day."""
    start = start_time.hour * 60 + start_time.minute
    end = end_time.hour * 60 + end_time.minute
    return end - start if end > start else end - start + 24 * 60


def _recurrence(spec: RuleSpec) -> rrule:
    """The day recurrence, anchored at local midnight of valid_from (naive dates only)."""
    dtstart = datetime.combine(spec.valid_from, time())
    parsed = rrulestr(_body(spec.rrule), dtstart=dtstart, forceset=False, ignoretz=True)
    assert isinstance(parsed, rrule)
    if spec.valid_until is not None:
        until = datetime.combine(spec.valid_until, time())
        own_until = getattr(parsed, "_until", None)  # dateutil has no public getter
        if own_until is None or own_until > until:
            parsed = parsed.replace(until=until)
    return parsed


def validate_rule(spec: RuleSpec, *, max_slots: int, horizon_days: int) -> None:
    body = _body(spec.rrule)
    if "DTSTART" in body.upper():
        raise RuleError("rrule", "must not contain DTSTART: the rule starts on valid_from")
    if "\n" in body or "\r" in body:
        raise RuleError("rrule", "a single RRULE line is expected")
    parts = [p for p in body.upper().split(";") if p]
    if not parts or any(not _PART.match(p) for p in parts):
        raise RuleError("rrule", f"not an RFC 5545 RRULE: {spec.rrule!r}")
    for part in parts:
        if part.split("=", 1)[0] in _FORBIDDEN_PARTS:
            raise RuleError(
                "rrule", f"{part.split('=', 1)[0]} is not allowed: times come from start_time"
            )
    if spec.valid_until is not None and spec.valid_until < spec.valid_from:
        raise RuleError("valid_until", "must be on or after valid_from")
    try:
        recurrence = _recurrence(spec)
    except (ValueError, TypeError, AttributeError) as exc:
        raise RuleError("rrule", f"not a valid RRULE: {exc}") from exc
    if getattr(recurrence, "_freq", None) not in _ALLOWED_FREQS:
        raise RuleError("rrule", "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY")
    for name, value in (("start_time", spec.start_time), ("end_time", spec.end_time)):
        if value.second or value.microsecond:
            raise RuleError(name, "must be a whole minute (HH:MM)")
    period = nominal_period_minutes(spec.start_time, spec.end_time)
    if not 5 <= spec.slot_minutes <= 720:
        raise RuleError("slot_minutes", "must be between 5 and 720")
    if period % spec.slot_minutes:
        raise RuleError(
            "slot_minutes",
            f"{spec.slot_minutes} does not divide the {period}-minute period evenly",
        )
    window_end = datetime.combine(spec.valid_from + timedelta(days=horizon_days), time())
    days = recurrence.between(datetime.combine(spec.valid_from, time()), window_end, inc=True)
    count = len(days) * (period // spec.slot_minutes)
    if count > max_slots:
        raise RuleError(
            "rrule",
            f"would create {count} slots over {horizon_days} days (at most {max_slots})",
        )


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """Local wall-clock time to a UTC instant. A time inside a spring-forward gap resolves
    to the instant after the gap; an ambiguous one to its first occurrence (fold=0)."""
    local = datetime.combine(day, at, tzinfo=tz)
    return local.astimezone(UTC).astimezone(tz).astimezone(UTC)


def expand_periods(
    spec: RuleSpec, tz: ZoneInfo, window_start: datetime, window_end: datetime
) -> list[tuple[datetime, datetime]]:
    """The rule's periods (UTC start and end instants, DST-correct) that may hold a slot
    starting in [window_start, window_end). Slots cut a period in absolute time."""
    window_start, window_end = window_start.astimezone(UTC), window_end.astimezone(UTC)
    if window_end <= window_start:
        return []
    overnight = spec.end_time <= spec.start_time
    first_day = window_start.astimezone(tz).date() - timedelta(days=1 if overnight else 0)
    last_day = window_end.astimezone(tz).date()
    first_day = max(first_day, spec.valid_from)
    if spec.valid_until is not None:
        last_day = min(last_day, spec.valid_until)
    if last_day < first_day:
        return []
    days = _recurrence(spec).between(
        datetime.combine(first_day, time()), datetime.combine(last_day, time()), inc=True
    )
    one_day = timedelta(days=1)
    periods: list[tuple[datetime, datetime]] = []
    for occurrence in days:
        day = occurrence.date()
        period_start = local_instant(day, spec.start_time, tz)
        period_end = local_instant(day + one_day if overnight else day, spec.end_time, tz)
        periods.append((period_start, period_end))
    return periods


def slots_in_window(
    period_start: datetime,
    period_end: datetime,
    step: timedelta,
    window_start: datetime,
    window_end: datetime,
) -> tuple[datetime, int]:
    """The first slot of a period that starts in [window_start, window_end), and how many
    consecutive slots of length `step` from there do (0: none)."""
    total = (period_end - period_start) // step  # whole slots in the period
    first = max(0, -((period_start - window_start) // step))  # ceil((ws - ps) / step)
    stop = min(total, -((period_start - window_end) // step))  # ceil((we - ps) / step)
    return period_start + first * step, max(0, stop - first)


def expand_rule(
    spec: RuleSpec, tz: ZoneInfo, window_start: datetime, window_end: datetime
) -> list[tuple[datetime, datetime]]:
    """Every slot of the rule whose start lies in [window_start, window_end), as UTC instants.

    UTC on purpose: two datetimes of one ZoneInfo compare, subtract and hash by their wall
    clock, fold ignored, so on the night the clocks go back 02:00+02:00 and 02:00+01:00 would
    be "equal" and a 02:00+02:00 → 02:00+01:00 slot zero minutes long. Convert to the zone
    (`astimezone(tz)`) only to show a time, never to compute with it."""
    step = timedelta(minutes=spec.slot_minutes)
    slots: list[tuple[datetime, datetime]] = []
    for period_start, period_end in expand_periods(spec, tz, window_start, window_end):
        first, count = slots_in_window(period_start, period_end, step, window_start, window_end)
        for k in range(count):
            cursor = first + k * step
            slots.append((cursor, cursor + step))
    return slots
