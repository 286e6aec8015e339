"""Agenda import, event by event: what real agenda programs export (Exchange's RRULE with
blanks, endless all-day recurrences, one broken event among good ones, windows-1252 without a
charset) imports; each event that cannot be a slot is skipped and listed; every slot of the
feed is accounted for. Against a real local HTTP server and the real database."""

import json
import time
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.sas_bridge import feed_ical, feed_import
from app.sas_bridge.feed_fetch import feed_client
from app.sas_bridge.feed_ical import parse_ical
from app.sas_bridge.feed_import import import_due_feeds
from app.sas_bridge.feed_parse import Window
from bench.feed_import import NOW, google_year
from tests.feed_server import Feed, FeedServer
from tests.test_agenda_import import (
    calendar,
    configure,
    event,
    import_now,
    imported_slots,
    local_feeds,  # noqa: F401  (autouse: local http feeds, short retries)
    slot_event,
    stamp,
)
from tests.test_slot_search import add_slot, at


@pytest.fixture
async def server():
    s = await FeedServer().start()
    yield s
    await s.stop()


def all_day(day: date, uid: str, *, extra: str = "", categories: str = "") -> str:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20261101T000000Z",
        f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
        f"DTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}",
        "SUMMARY:Payer le loyer",
    ]
    if categories:
        lines.append(f"CATEGORIES:{categories}")
    lines += [line for line in extra.split("\n") if line]
    lines.append("END:VEVENT")
    return "\r\n".join(lines)


async def feed_status(client, t):
    r = await client.get(f"/v1/practitioners/{t.practitioner_id}/agenda-feed", headers=t.practice)
    return r.json()


def accounted(result) -> int:
    not_imported = [c for c in result["conflicts"] if c["kind"] == "not_imported"]
    return result["added"] + result["unchanged"] + len(not_imported)


# 1. Exchange's RRULE, and no parser exception escaping the record --------------------------


async def test_exchange_rrule_with_blanks_after_commas_is_read(client, territory, server, session):
    # Microsoft CDO for Exchange writes BYDAY=MO, TU, WE, TH, FR (the icalendar suite's
    # issue_165_missing_event.ics); the rule is the working days, folded as Exchange folds.
    tomorrow = at(24).replace(hour=10)
    start = tomorrow + timedelta(days=(4 - tomorrow.weekday()) % 7)  # a Friday, within a week
    rule = "RRULE:FREQ=DAILY;COUNT=3;INTERVAL=1;BYDAY=MO, TU, WE, TH, FR;WKST=SU"
    body = calendar(event(start, start + timedelta(minutes=30), uid="standup", extra=rule))
    await configure(client, territory, server.serve("/exchange.ics", Feed(body)))
    result = await import_now(client, territory)
    assert (result["status"], result["added"]) == ("ok", 3), result
    days = [s.start.astimezone(start.tzinfo) for s in await imported_slots(session, territory)]
    assert [d.weekday() for d in days] == [4, 0, 1]  # Friday, then Monday and Tuesday
    assert all((d.hour, d.minute) == (10, 0) for d in days)


async def test_an_exception_of_the_parser_is_recorded_as_a_failed_import(
    client, territory, server, monkeypatch
):
    def broken_parser(*args, **kwargs):
        raise KeyError("a bug in a parser")

    monkeypatch.setattr(feed_import, "parse_ical", broken_parser)
    await configure(client, territory, server.serve("/a.ics", Feed(calendar(slot_event(3)))))
    result = await import_now(client, territory)
    assert result["status"] == "failed"
    assert "cannot be read (KeyError)" in result["reason"]
    feed = await feed_status(client, territory)
    assert (feed["last_status"], feed["last_error"]) == ("failed", result["reason"])


# 2. All-day events ---------------------------------------------------------------------------


async def test_endless_all_day_recurrences_cost_nothing_and_the_slot_beside_them_is_imported(
    client, territory, server
):
    today = at(0).date()
    body = calendar(
        # Apple's monthly "pay the bill", Evolution's weekly all-day event, Google's free
        # all-day events: none ends, none is a slot.
        all_day(today, "bill@apple", extra="RRULE:FREQ=MONTHLY\nTRANSP:TRANSPARENT"),
        all_day(today, "weekly@evolution", extra="RRULE:FREQ=WEEKLY"),
        all_day(today, "daily@google", extra="RRULE:FREQ=DAILY\nTRANSP:TRANSPARENT"),
        slot_event(5, uid="snp"),
    )
    await configure(client, territory, server.serve("/a.ics", Feed(body)))
    cpu = time.process_time()
    result = await import_now(client, territory)
    cpu = time.process_time() - cpu
    assert (result["status"], result["added"], result["skipped"]) == ("ok", 1, []), result
    assert cpu < 0.5


async def test_an_all_day_event_in_the_slot_category_is_skipped_and_reported(
    client, territory, server
):
    today = at(48).date()
    body = calendar(all_day(today, "allday-snp", categories="SNP"), slot_event(5, uid="snp"))
    await configure(client, territory, server.serve("/a.ics", Feed(body)))
    result = await import_now(client, territory)
    assert (result["status"], result["added"]) == ("partial", 1)
    assert result["skipped"] == [
        {
            "uid": "allday-snp",
            "start": today.isoformat(),
            "reason": "all-day event: not a consultation slot",
            "occurrences": 1,
        }
    ]


# 3. One bad event never fails the feed ------------------------------------------------------


def bad_event(kind: str) -> tuple[str, str]:
    """An event that cannot be a slot, in the slots' category, and the reason expected."""
    start = at(30)
    if kind == "two days":
        return event(start, start + timedelta(days=2), uid="bad"), "lasts 2 days"
    if kind == "zero minutes":
        return event(start, start, uid="bad"), "lasts 0 minutes"
    if kind == "ends before it starts":
        return event(start, start - timedelta(hours=1), uid="bad"), "ends before it starts"
    if kind == "no end":
        text = event(start, start, uid="bad").replace(
            f"DTEND;TZID=Europe/Paris:{stamp(start)}\r\n", ""
        )
        return text, "lasts 0 minutes"
    if kind == "malformed RDATE":  # a Google birthday's RDATE:20131210Z
        return event(
            start, start + timedelta(minutes=30), uid="bad", extra="RDATE:20131210Z"
        ), "RDATE cannot be read"
    if kind == "blank TZID":  # Exchange, with a VTIMEZONE whose TZID is blank too
        text = event(start, start + timedelta(minutes=30), uid="bad")
        return text.replace("TZID=Europe/Paris", "TZID="), "blank time zone"
    if kind == "unknown TZID":
        return event(
            start, start + timedelta(minutes=30), uid="bad", tzid="Europe/Pariss"
        ), "unknown time zone 'Europe/Pariss'"
    if kind == "every minute":
        return event(
            start, start + timedelta(minutes=1), uid="bad", extra="RRULE:FREQ=MINUTELY"
        ), "repeats every minute"
    if kind == "unreadable start":
        return (
            "BEGIN:VEVENT\r\nUID:bad\r\nDTSTART:2027-13-45\r\nDURATION:PT30M\r\n"
            "CATEGORIES:SNP\r\nEND:VEVENT"
        ), "DTSTART cannot be read"
    raise AssertionError(kind)


BAD_EVENTS = [
    "two days",
    "zero minutes",
    "ends before it starts",
    "no end",
    "malformed RDATE",
    "blank TZID",
    "unknown TZID",
    "every minute",
    "unreadable start",
]


@pytest.mark.parametrize("kind", BAD_EVENTS)
async def test_one_bad_event_is_skipped_and_reported_and_the_others_imported(
    kind, client, territory, server, session
):
    bad, reason = bad_event(kind)
    body = calendar(slot_event(3, uid="good-1"), bad, slot_event(5, uid="good-2"))
    if kind == "blank TZID":
        zone = "BEGIN:VTIMEZONE\r\nTZID:\r\nBEGIN:STANDARD\r\nDTSTART:16010101T030000\r\n"
        zone += "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE"
        body = body.replace(b"BEGIN:VEVENT", zone.encode() + b"\r\nBEGIN:VEVENT", 1)
    await configure(client, territory, server.serve("/a.ics", Feed(body)))
    result = await import_now(client, territory)
    assert (result["status"], result["added"], result["skipped_count"]) == ("partial", 2, 1)
    [skipped] = result["skipped"]
    assert skipped["uid"].startswith("bad") and reason in skipped["reason"], skipped
    assert [s.start for s in await imported_slots(session, territory)] == [at(3), at(5)]
    feed = await feed_status(client, territory)
    assert (feed["last_status"], feed["last_skipped"]) == ("partial", 1)
    assert feed["last_error"].startswith("1 event(s)")


async def test_a_skipped_event_is_reported_with_its_local_start(client, territory, server):
    start = at(30)
    body = calendar(event(start, start + timedelta(days=2), uid="two-days"), slot_event(5))
    await configure(client, territory, server.serve("/a.ics", Feed(body)))
    [skipped] = (await import_now(client, territory))["skipped"]
    assert skipped == {
        "uid": "two-days@cabinet.example",
        "start": start.isoformat(),
        "reason": "lasts 2 days: a slot lasts at most 24 h",
        "occurrences": 1,
    }


async def test_the_bad_occurrences_of_a_recurring_event_are_counted_once(client, territory, server):
    start = at(24)
    body = calendar(
        event(start, start + timedelta(days=2), uid="weekly", extra="RRULE:FREQ=DAILY;COUNT=3"),
        slot_event(5),
    )
    await configure(client, territory, server.serve("/a.ics", Feed(body)))
    result = await import_now(client, territory)
    [skipped] = result["skipped"]
    assert (skipped["occurrences"], skipped["start"]) == (3, start.isoformat())


async def test_a_feed_whose_every_event_is_unusable_fails_and_keeps_the_slots(
    client, territory, server, session
):
    url = server.serve("/a.ics", Feed(calendar(slot_event(3))))
    await configure(client, territory, url)
    await import_now(client, territory)
    start = at(6)
    server.feeds["/a.ics"] = Feed(calendar(event(start, start, uid="zero")))
    result = await import_now(client, territory)
    assert result["status"] == "failed"
    assert "None of the 1 events" in result["reason"] and "lasts 0 minutes" in result["reason"]
    assert [s.start for s in await imported_slots(session, territory)] == [at(3)]


# 4. Encoding ---------------------------------------------------------------------------------


async def test_windows_1252_without_charset_is_read_and_the_guess_noted(
    client, territory, server, session
):
    text = calendar(slot_event(3, categories="SNP,Téléconsultation")).decode()
    body = text.replace("SUMMARY:Consultation", "SUMMARY:Créneau réservé SAS").encode("cp1252")
    url = server.serve("/win.ics", Feed(body, content_type="text/calendar"))
    await configure(client, territory, url)
    result = await import_now(client, territory)
    assert (result["status"], result["added"]) == ("ok", 1)
    assert result["encoding"].startswith("windows-1252 (guessed")
    [slot] = await imported_slots(session, territory)
    assert slot.modality == "teleconsultation"  # the category "Téléconsultation", read right


async def test_declared_charset_and_utf8_are_noted(client, territory, server):
    url = server.serve("/a.ics", Feed(calendar(slot_event(3)), content_type="text/calendar"))
    await configure(client, territory, url)
    assert (await import_now(client, territory))["encoding"] == "utf-8"
    server.feeds["/a.ics"] = Feed(calendar(slot_event(4)))  # text/calendar; charset=utf-8
    assert (await import_now(client, territory))["encoding"] == "utf-8 (declared)"


# 5. Every event accounted for ----------------------------------------------------------------


async def test_overlapping_events_of_one_feed_are_a_conflict_naming_the_other_event(
    client, territory, server
):
    start = at(3)
    body = calendar(
        event(start, start + timedelta(minutes=30), uid="first"),
        event(start, start + timedelta(minutes=20), uid="same-start"),  # the unreported one
        event(start + timedelta(minutes=15), start + timedelta(minutes=45), uid="overlapping"),
        event(start + timedelta(minutes=30), start + timedelta(minutes=60), uid="after"),
    )
    await configure(client, territory, server.serve("/a.ics", Feed(body)))
    result = await import_now(client, territory)
    assert (result["slots_in_feed"], result["added"]) == (4, 2)
    # In start order, the shorter first: "same-start" is kept, then "after".
    conflicts = sorted(result["conflicts"], key=lambda c: c["uid"])
    assert [(c["kind"], c["uid"], c["with_uid"]) for c in conflicts] == [
        ("not_imported", "first@cabinet.example", "same-start@cabinet.example"),
        ("not_imported", "overlapping@cabinet.example", "same-start@cabinet.example"),
    ]
    assert all("of the same feed" in c["reason"] for c in conflicts)
    assert accounted(result) == result["slots_in_feed"]


async def test_a_feed_slot_overlapping_a_published_slot_names_that_slot(client, territory, server):
    published = await add_slot(client, territory, territory.practitioner_id, 3)
    body = calendar(slot_event(3, minutes=60, uid="late"), slot_event(5))
    await configure(client, territory, server.serve("/a.ics", Feed(body)))
    result = await import_now(client, territory)
    [conflict] = result["conflicts"]
    assert (conflict["kind"], conflict["slot_id"]) == ("not_imported", published)
    assert conflict["uid"] == "late@cabinet.example"
    assert published in conflict["reason"] and "published by hand" in conflict["reason"]


async def test_every_slot_of_the_feed_is_added_unchanged_or_a_conflict(
    client, territory, server, session
):
    await add_slot(client, territory, territory.practitioner_id, 10)
    start = at(3)
    events = [
        slot_event(3, uid="a"),
        event(start + timedelta(minutes=15), start + timedelta(minutes=45), uid="a-twin"),
        slot_event(5, uid="b"),
        slot_event(10, uid="on-published"),
        slot_event(12, minutes=90, uid="long"),
        event(at(20), at(20), uid="zero"),  # skipped, not a slot
    ]
    feed = Feed(calendar(*events))
    await configure(client, territory, server.serve("/a.ics", feed), slot_minutes=30)
    first = await import_now(client, territory)
    assert first["slots_in_feed"] == 7  # a, a-twin, b, on-published, long cut in three
    # a overlaps a-twin, on-published the published slot: 5 added, 2 conflicts.
    assert (first["added"], first["unchanged"], first["skipped_count"]) == (5, 0, 1)
    assert accounted(first) == first["slots_in_feed"]

    feed.body = calendar(*events, slot_event(14, uid="new"))
    second = await import_now(client, territory)
    assert (second["added"], second["unchanged"]) == (1, 5)
    assert accounted(second) == second["slots_in_feed"] == 8


async def test_an_event_shorter_than_the_slot_length_is_skipped(client, territory, server):
    body = calendar(slot_event(3, minutes=20, uid="short"), slot_event(5, minutes=30))
    await configure(client, territory, server.serve("/a.ics", Feed(body)), slot_minutes=30)
    result = await import_now(client, territory)
    assert (result["status"], result["added"]) == ("partial", 1)
    assert "shorter than the feed's slot length (30 min)" in result["skipped"][0]["reason"]


async def test_imports_list_shows_skipped_events_and_conflicts(client, territory, server):
    start = at(3)
    body = calendar(
        slot_event(3, uid="a"),
        event(start, start + timedelta(minutes=20), uid="b"),
        event(at(8), at(8), uid="zero"),
    )
    await configure(client, territory, server.serve("/a.ics", Feed(body)))
    await import_now(client, territory)
    r = await client.get(
        f"/v1/practitioners/{territory.practitioner_id}/agenda-feed/imports",
        headers=territory.coordinator,
    )
    [entry] = r.json()
    assert entry["status"] == "partial"
    assert [s["uid"] for s in entry["skipped"]] == ["zero@cabinet.example"]
    assert [(c["uid"], c["with_uid"]) for c in entry["conflicts"]] == [
        ("a@cabinet.example", "b@cabinet.example")
    ]


async def test_the_import_job_counts_partial_imports(client, territory, server, sessionmaker):
    body = calendar(slot_event(3), event(at(8), at(8), uid="zero"))
    await configure(client, territory, server.serve("/a.ics", Feed(body)))
    async with feed_client() as http:
        counts = await import_due_feeds(sessionmaker, http, concurrency=1)
    assert (counts["feeds"], counts["partial"], counts["ok"]) == (1, 1, 0)


def test_events_set_aside_unparsed_change_no_slot():
    # A year of a GP's Google calendar (bench/feed_import.py): reading every event, or only
    # those that can be slots, gives the same slots and counts the same events.
    body = google_year(2000)
    window = Window(NOW, NOW + timedelta(days=30))
    kwargs = dict(
        tz=ZoneInfo("Europe/Paris"),
        window=window,
        category="SNP",
        modality="cabinet",
        slot_minutes=None,
        max_slots=3000,
    )
    fast = parse_ical(body, "text/calendar", **kwargs)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(feed_ical, "set_aside", lambda text, category: (text, 0))
        full = parse_ical(body, "text/calendar", **kwargs)
    assert len(fast.slots) > 40
    assert (fast.slots, fast.events) == (full.slots, full.events)


async def test_a_fhir_slot_that_cannot_be_imported_is_skipped_and_the_others_imported(
    client, territory, server, session
):
    def slot(slot_id: str, start: str, end: str) -> dict:
        return {
            "resource": {
                "resourceType": "Slot",
                "id": slot_id,
                "status": "free",
                "start": start,
                "end": end,
            }
        }

    good = slot("good", at(3).isoformat(), (at(3) + timedelta(minutes=20)).isoformat())
    long = slot("long", at(5).isoformat(), (at(5) + timedelta(days=2)).isoformat())
    naive = slot("naive", at(7).replace(tzinfo=None).isoformat(), at(8).isoformat())
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [good, long, naive]}
    url = server.serve(
        "/fhir/Slot", Feed(json.dumps(bundle).encode(), content_type="application/fhir+json")
    )
    await configure(client, territory, url, format="fhir")
    result = await import_now(client, territory)
    assert (result["status"], result["added"], result["skipped_count"]) == ("partial", 1, 2)
    reasons = {s["uid"]: s["reason"] for s in result["skipped"]}
    assert "at most 24 h" in reasons["Slot/long"]
    assert "no time zone offset" in reasons["Slot/naive"]
    assert [s.start for s in await imported_slots(session, territory)] == [at(3)]
