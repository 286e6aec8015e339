"""Agenda feed expansion: the CPU one import spends reading a year of a GP's Google calendar
export (about 2,000 events: patient appointments, weekly SNP series with exceptions and moved
occurrences, single SNP slots, endless all-day birthdays, holidays and a monthly bill) into the
slots of the horizon. The budget is 0.5 s of CPU per import.

    .venv/bin/python -m bench.feed_import [--events 2000] [--runs 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from app.sas_bridge.feed_ical import parse_ical
from app.sas_bridge.feed_parse import Window

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2027, 3, 1, 7, 0, tzinfo=UTC)
BUDGET_SECONDS = 0.5
VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Europe/Paris
X-LIC-LOCATION:Europe/Paris
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE"""


def _stamp(when: datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%S")


def _event(uid: str, start: datetime, minutes: int, *lines: str) -> str:
    return "\r\n".join(
        [
            "BEGIN:VEVENT",
            f"DTSTART;TZID=Europe/Paris:{_stamp(start)}",
            f"DTEND;TZID=Europe/Paris:{_stamp(start + timedelta(minutes=minutes))}",
            "DTSTAMP:20270101T000000Z",
            f"UID:{uid}@google.com",
            "CREATED:20260101T000000Z",
            "LAST-MODIFIED:20260102T000000Z",
            "SEQUENCE:0",
            "STATUS:CONFIRMED",
            *lines,
            "END:VEVENT",
        ]
    )


def _all_day(uid: str, day: datetime, *lines: str) -> str:
    return "\r\n".join(
        [
            "BEGIN:VEVENT",
            f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
            f"DTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}",
            "DTSTAMP:20270101T000000Z",
            f"UID:{uid}@google.com",
            "TRANSP:TRANSPARENT",
            *lines,
            "END:VEVENT",
        ]
    )


def google_year(events: int = 2000, seed: int = 42) -> bytes:
    """A GP's year, eleven months back and one ahead of NOW, as Google Calendar exports it."""
    rng = random.Random(seed)
    local_now = NOW.astimezone(PARIS).replace(tzinfo=None)
    first_day = (local_now - timedelta(days=335)).replace(hour=0, minute=0)
    out: list[str] = []
    # 10 weekly SNP series (a weekday's 17:00-19:00 cut in 20-minute events), with exceptions
    # and moved occurrences, as a practice keeps them.
    for series in range(10):
        day = first_day + timedelta(days=series % 5)
        at = day.replace(hour=17, minute=20 * (series // 5))
        uid = f"snp-series-{series}"
        excluded = [at + timedelta(weeks=w) for w in rng.sample(range(1, 50), 6)]
        out.append(
            _event(
                uid,
                at,
                20,
                "RRULE:FREQ=WEEKLY;WKST=MO",
                *(f"EXDATE;TZID=Europe/Paris:{_stamp(x)}" for x in excluded),
                "SUMMARY:Créneau SNP",
                "CATEGORIES:SNP",
                "TRANSP:OPAQUE",
            )
        )
        for week in rng.sample(range(1, 50), 4):
            original = at + timedelta(weeks=week)
            if original in excluded:
                continue
            out.append(
                _event(
                    uid,
                    original + timedelta(minutes=40 + 20 * (series // 5)),
                    20,
                    f"RECURRENCE-ID;TZID=Europe/Paris:{_stamp(original)}",
                    "SUMMARY:Créneau SNP (déplacé)",
                    "CATEGORIES:SNP",
                )
            )
    # All-day: yearly birthdays without end, holidays, a monthly bill without end.
    for i in range(30):
        out.append(
            _all_day(f"birthday-{i}", first_day + timedelta(days=rng.randrange(365)),
                     "RRULE:FREQ=YEARLY", "SUMMARY:Anniversaire")
        )  # fmt: skip
    for i in range(20):
        out.append(_all_day(f"holiday-{i}", first_day + timedelta(days=18 * i), "SUMMARY:Congé"))
    out.append(_all_day("bill", first_day, "RRULE:FREQ=MONTHLY", "SUMMARY:Payer le loyer"))
    # Single SNP slots and patient appointments fill the rest, on working days 8:00-19:00.
    singles = max(events - len(out), 0)
    for i in range(singles):
        day = first_day + timedelta(days=rng.randrange(365))
        if day.weekday() >= 5:
            day += timedelta(days=2)
        start = day.replace(hour=rng.randrange(8, 19), minute=rng.choice((0, 15, 30, 45)))
        if i % 8 == 0:
            out.append(
                _event(f"snp-{i}", start, 15, "SUMMARY:SNP", "CATEGORIES:SNP", "TRANSP:OPAQUE")
            )
        else:
            out.append(
                _event(
                    f"rdv-{i}",
                    start,
                    15,
                    f"SUMMARY:Consultation patient {i}",
                    "DESCRIPTION:Motif : renouvellement\\, suivi",
                    "LOCATION:Cabinet",
                    "TRANSP:OPAQUE",
                )
            )
    header = [
        "BEGIN:VCALENDAR",
        "PRODID:-//Google Inc//Google Calendar 70.9054//EN",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "X-WR-CALNAME:Cabinet",
        "X-WR-TIMEZONE:Europe/Paris",
        VTIMEZONE,
    ]
    return ("\r\n".join([*header, *out, "END:VCALENDAR"]) + "\r\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--horizon-days", type=int, default=14)
    args = parser.parse_args()
    body = google_year(args.events)
    window = Window(NOW, NOW + timedelta(days=args.horizon_days))
    seconds = []
    for _ in range(args.runs):
        started = time.process_time()
        feed = parse_ical(
            body,
            "text/calendar; charset=utf-8",
            tz=PARIS,
            window=window,
            category="SNP",
            modality="cabinet",
            slot_minutes=None,
            max_slots=3000,
        )
        seconds.append(time.process_time() - started)
    median = statistics.median(seconds)
    print(
        f"feed of {feed.events} events, {len(body) / 1e6:.2f} MB: {len(feed.slots)} slots over "
        f"{args.horizon_days} days, {feed.skipped_events} skipped"
    )
    print(
        f"CPU per import: median {median:.3f} s, max {max(seconds):.3f} s over {args.runs} runs "
        f"(budget {BUDGET_SECONDS} s: {'within' if max(seconds) < BUDGET_SECONDS else 'OVER'})"
    )


if __name__ == "__main__":
    main()
