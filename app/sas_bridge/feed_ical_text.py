"""The text of an iCalendar feed before and while it is parsed: known quirks of real exports
repaired, events that can be no slot set aside unparsed (parsing is most of an import's CPU),
and parsing such that one broken event, task or time zone does not make the rest unreadable."""

from __future__ import annotations

import re

import icalendar

from app.sas_bridge.feed_fetch import FeedError

_FOLD = re.compile(r"\r?\n[ \t]")
_RULE_WITH_BLANKS = re.compile(
    r"^((?:RRULE|EXRULE)[;:])([^\r\n]*[ \t][^\r\n]*)(?=\r?$)", re.M | re.I
)
_VTIMEZONE = re.compile(r"BEGIN:VTIMEZONE\r?\n.*?END:VTIMEZONE\r?\n?", re.S | re.I)
_BLANK_TZID = re.compile(r"^TZID:[ \t]*\r?$", re.M | re.I)
_VEVENT = re.compile(r"^BEGIN:VEVENT\r?\n.*?^END:VEVENT\r?\n?", re.S | re.M | re.I)
# Components that are never slots, left out when the file cannot be parsed with them.
_NOT_EVENTS = re.compile(
    r"^BEGIN:(VTODO|VJOURNAL|VFREEBUSY|VAVAILABILITY)\r?\n.*?^END:\1\r?\n?", re.S | re.M | re.I
)
_UID = re.compile(r"^UID[;:](?:[^:\r\n]*:)?([^\r\n]*)", re.M | re.I)
_FREE = re.compile(r"^TRANSP[;:][^\r\n]*TRANSPARENT", re.M | re.I)
_CATEGORIES = re.compile(r"^CATEGORIES[;:]([^\r\n]*)", re.M | re.I)


def repair(text: str) -> str:
    """Known quirks of real exports, made standard before parsing:
    - Exchange writes `BYDAY=MO, TU, WE` (blanks after the commas) in RRULE;
    - Exchange writes a VTIMEZONE with a blank TZID, which no parser accepts (its events,
      with `TZID=` blank too, are then skipped as events of an unknown zone)."""
    if _RULE_WITH_BLANKS.search(_FOLD.sub("", text)):
        text = _RULE_WITH_BLANKS.sub(
            lambda m: m.group(1) + re.sub(r"[ \t]+", "", m.group(2)), _FOLD.sub("", text)
        )
    if _BLANK_TZID.search(text):
        text = _VTIMEZONE.sub(lambda m: "" if _BLANK_TZID.search(m.group(0)) else m.group(0), text)
    return text


def set_aside(text: str, category: str) -> tuple[str, int]:
    """The text without the events that cannot be slots, and how many those were. Parsing
    is most of an import's CPU, and most events of a practice's calendar are appointments:
    an event is kept unparsed only when neither it nor another event of its UID (a moved
    occurrence) is marked free or names the category anywhere in its CATEGORIES. The test
    errs on the side of parsing: what it keeps is then read as usual."""
    blocks = list(_VEVENT.finditer(text))
    if not blocks:
        return text, 0
    wanted: set[str] = set()
    keep_all_uids = False
    for block in blocks:
        body = _FOLD.sub("", block.group(0))
        if _FREE.search(body) or any(
            category in value.lower() for value in _CATEGORIES.findall(body)
        ):
            uid = _UID.search(body)
            if uid is None:
                keep_all_uids = True  # cannot tell its siblings: parse everything
                break
            wanted.add(uid.group(1).strip())
    if keep_all_uids:
        return text, 0
    dropped = 0

    def keep(block: re.Match[str]) -> str:
        nonlocal dropped
        uid = _UID.search(_FOLD.sub("", block.group(0)))
        if uid is None or uid.group(1).strip() in wanted:
            return block.group(0)
        dropped += 1
        return ""

    return _VEVENT.sub(keep, text), dropped


def parse_text(text: str) -> tuple[list[icalendar.Calendar], list[tuple[int, str]]]:
    """The calendars of the file. When the file as a whole cannot be parsed, each event is
    parsed alone with the file's time zones, and those that cannot be are returned as
    (position, reason): one broken event (or task, or time zone) does not make the others
    unreadable."""
    try:
        calendars = list(icalendar.Calendar.from_ical(text, multiple=True))
    except Exception as whole:  # the parser raises ValueError and others on broken input
        events = list(_VEVENT.finditer(text))
        skeleton = _VEVENT.sub("", text)
        try:
            calendars = list(icalendar.Calendar.from_ical(skeleton, multiple=True))
        except Exception:
            # Tasks, journal entries and time zones that cannot be read are left out (the
            # events of such a zone are then skipped as events of an unknown zone); anything
            # else broken outside the events is fatal.
            skeleton = _VTIMEZONE.sub(
                lambda m: m.group(0) if _readable(m.group(0)) else "",
                _NOT_EVENTS.sub("", skeleton),
            )
            try:
                calendars = list(icalendar.Calendar.from_ical(skeleton, multiple=True))
            except Exception:
                raise FeedError(f"Unreadable iCalendar: {str(whole)[:200]}") from None
        if not calendars:
            raise FeedError("Unreadable iCalendar: no calendar in the file") from None
        zones = "".join(m.group(0) for m in _VTIMEZONE.finditer(skeleton))
        broken = []
        for position, match in enumerate(events):
            try:
                one = icalendar.Calendar.from_ical(
                    f"BEGIN:VCALENDAR\r\n{zones}{match.group(0)}END:VCALENDAR\r\n"
                )
                for event in one.walk("VEVENT"):
                    calendars[0].add_component(event)
            except Exception as exc:
                broken.append((position, f"unreadable event: {str(exc)[:150]}"))
        return calendars, broken
    if not calendars:
        raise FeedError("Unreadable iCalendar: no complete calendar (BEGIN ... END:VCALENDAR)")
    return calendars, []


def _readable(component: str) -> bool:
    try:
        icalendar.Calendar.from_ical(f"BEGIN:VCALENDAR\r\n{component}END:VCALENDAR\r\n")
    except Exception:
        return False
    return True
