"""Agenda import from practices' own software (iCalendar and FHIR feeds), against a real local
HTTP server serving the feed files."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.config import get_settings
from app.sas_bridge.feed_fetch import feed_client
from app.sas_bridge.feed_import import import_due_feeds, run_import
from app.scheduling.models import Slot
from tests.conftest import assert_problem
from tests.feed_server import Feed, FeedServer
from tests.test_bookings import book
from tests.test_slot_search import add_slot, at


@pytest.fixture
async def server():
    s = await FeedServer().start()
    yield s
    await s.stop()


@pytest.fixture(autouse=True)
def local_feeds(monkeypatch):
    settings = get_settings()
    monkeypatch.setattr(settings, "feed_allow_insecure_urls", True)
    monkeypatch.setattr(settings, "feed_retry_base_seconds", 0.01)
    monkeypatch.setattr(settings, "feed_timeout_seconds", 1.0)


def stamp(when: datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%S")


def event(start: datetime, end: datetime, uid=None, *, extra="", categories="SNP", tzid=None):
    tzid = tzid or "Europe/Paris"
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid or uuid.uuid4()}@cabinet.example",
        "DTSTAMP:20261101T000000Z",
        f"DTSTART;TZID={tzid}:{stamp(start)}",
        f"DTEND;TZID={tzid}:{stamp(end)}",
        "SUMMARY:Consultation",
    ]
    if categories:
        lines.append(f"CATEGORIES:{categories}")
    lines += [line for line in extra.split("\n") if line]
    lines.append("END:VEVENT")
    return "\r\n".join(lines)


def calendar(*events: str) -> bytes:
    body = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Cabinet//Agenda//FR", *events]
    return ("\r\n".join([*body, "END:VCALENDAR"]) + "\r\n").encode()


def slot_event(hours: float, minutes: int = 30, **kw) -> str:
    start = at(hours)
    return event(start, start + timedelta(minutes=minutes), **kw)


async def configure(client, t, url, **over):
    body = {"url": url, "format": "ical", **over}
    r = await client.put(
        f"/v1/practitioners/{t.practitioner_id}/agenda-feed", json=body, headers=t.practice
    )
    assert r.status_code in (200, 201), r.text
    return r.json()


async def import_now(client, t):
    r = await client.post(
        f"/v1/practitioners/{t.practitioner_id}/agenda-feed/import", headers=t.practice
    )
    assert r.status_code == 200, r.text
    return r.json()


async def imported_slots(session, t):
    rows = await session.scalars(
        select(Slot)
        .where(Slot.practitioner_id == uuid.UUID(t.practitioner_id), Slot.source == "import")
        .order_by(Slot.start)
    )
    return list(rows.all())


async def test_feed_events_become_searchable_slots(client, territory, server, session):
    url = server.serve(
        "/agenda.ics",
        Feed(
            calendar(
                slot_event(3),
                slot_event(5, extra="TRANSP:TRANSPARENT", categories=""),
                slot_event(7, categories="Réunion"),  # busy time, not an SNP slot
                slot_event(9, extra="STATUS:CANCELLED"),
            )
        ),
    )
    feed = await configure(client, territory, url)
    assert feed["last_status"] == "pending"
    result = await import_now(client, territory)
    assert (result["status"], result["added"], result["slots_in_feed"]) == ("ok", 2, 2)
    search = (await client.get("/v1/slots", headers=territory.regulator)).json()["items"]
    assert [s["start"] for s in search] == [at(3).isoformat(), at(5).isoformat()]
    feed = (
        await client.get(
            f"/v1/practitioners/{territory.practitioner_id}/agenda-feed", headers=territory.practice
        )
    ).json()
    assert feed["last_status"] == "ok" and feed["last_error"] is None


async def test_unchanged_feed_is_not_read_again(client, territory, server):
    url = server.serve("/agenda.ics", Feed(calendar(slot_event(3)), etag='"v1"'))
    await configure(client, territory, url)
    assert (await import_now(client, territory))["added"] == 1
    again = await import_now(client, territory)
    assert again["status"] == "not_modified" and again["added"] == 0
    assert server.hits[-1][1]["if-none-match"] == '"v1"'


async def test_same_body_without_etag_changes_nothing(client, territory, server):
    url = server.serve("/agenda.ics", Feed(calendar(slot_event(3))))
    await configure(client, territory, url)
    await import_now(client, territory)
    assert (await import_now(client, territory))["status"] == "not_modified"


async def test_update_adds_new_removes_vanished_free_and_keeps_booked(
    client, territory, server, session
):
    kept, booked, dropped = slot_event(3, uid="a"), slot_event(4, uid="b"), slot_event(5, uid="c")
    feed = Feed(calendar(kept, booked, dropped))
    url = server.serve("/agenda.ics", feed)
    await configure(client, territory, url)
    assert (await import_now(client, territory))["added"] == 3
    slots = await imported_slots(session, territory)
    booking = (await book(client, territory, str(slots[1].id))).json()
    assert booking["status"] == "booked"

    feed.body = calendar(kept, slot_event(6, uid="d"))  # b (booked) and c (free) vanish
    result = await import_now(client, territory)
    assert (result["added"], result["removed"], result["unchanged"]) == (1, 1, 1)
    assert [c["slot_id"] for c in result["conflicts"]] == [str(slots[1].id)]
    assert "booked" in result["conflicts"][0]["reason"]
    session.expire_all()
    after = await imported_slots(session, territory)
    assert [(s.start, s.status) for s in after] == [
        (at(3), "free"),
        (at(4), "booked"),
        (at(6), "free"),
    ]


async def test_dst_inside_a_feed_keeps_local_wall_clock_time(
    client, territory, server, sessionmaker
):
    # A daily 17:00-17:30 recurrence across the spring change (28 March 2027, Paris).
    start = datetime(2027, 3, 26, 17, 0)
    body = calendar(event(start, start + timedelta(minutes=30), extra="RRULE:FREQ=DAILY;COUNT=4"))
    url = server.serve("/dst.ics", Feed(body))
    feed = await configure(client, territory, url)
    async with feed_client() as http:
        entry = await run_import(
            sessionmaker,
            http,
            uuid.UUID(feed["id"]),
            now=datetime(2027, 3, 25, 8, 0, tzinfo=UTC),
        )
    assert entry.status == "ok" and entry.added == 4
    async with sessionmaker() as session:
        starts = [s.start for s in await imported_slots(session, territory)]
    assert [s.astimezone(UTC).hour for s in starts] == [16, 16, 15, 15]  # 17:00 local each day


async def test_floating_times_are_the_territory_clock_and_events_are_cut(
    client, territory, server, session
):
    start = at(24)
    floating = "\r\n".join(
        [
            "BEGIN:VEVENT",
            "UID:float@cabinet.example",
            f"DTSTART:{stamp(start)}",
            "DURATION:PT2H",
            "CATEGORIES:snp",
            "END:VEVENT",
        ]
    )
    url = server.serve("/float.ics", Feed(calendar(floating)))
    await configure(client, territory, url, slot_minutes=30, modality="teleconsultation")
    result = await import_now(client, territory)
    assert result["added"] == 4
    slots = await imported_slots(session, territory)
    assert [s.start for s in slots] == [start + timedelta(minutes=30 * i) for i in range(4)]
    assert {s.modality for s in slots} == {"teleconsultation"}


async def test_fhir_feed_pages_are_followed_and_only_free_slots_kept(
    client, territory, server, session
):
    def slot(hours, status="free", code="AMB"):
        return {
            "resource": {
                "resourceType": "Slot",
                "id": str(uuid.uuid4()),
                "status": status,
                "start": at(hours).isoformat(),
                "end": (at(hours) + timedelta(minutes=20)).isoformat(),
                "serviceType": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                "code": code,
                            }
                        ]
                    }
                ],
            }
        }

    second = server.serve(
        "/fhir/page2",
        Feed(
            json.dumps(
                {"resourceType": "Bundle", "type": "searchset", "entry": [slot(6, code="VR")]}
            ).encode(),
            content_type="application/fhir+json",
        ),
    )
    first = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "next", "url": second}],
        "entry": [slot(3), slot(4, status="busy"), slot(5, code="HH")],
    }
    url = server.serve(
        "/fhir/Slot", Feed(json.dumps(first).encode(), content_type="application/fhir+json")
    )
    await configure(client, territory, url, format="fhir")
    result = await import_now(client, territory)
    assert (result["status"], result["added"]) == ("ok", 3), result
    slots = await imported_slots(session, territory)
    assert [(s.start, s.modality) for s in slots] == [
        (at(3), "cabinet"),
        (at(5), "visite"),
        (at(6), "teleconsultation"),
    ]


async def test_feed_slot_overlapping_a_published_slot_is_a_conflict(client, territory, server):
    await add_slot(client, territory, territory.practitioner_id, 3)
    url = server.serve("/agenda.ics", Feed(calendar(slot_event(3, minutes=60), slot_event(5))))
    await configure(client, territory, url)
    result = await import_now(client, territory)
    assert result["added"] == 1
    assert "overlaps" in result["conflicts"][0]["reason"]


GOOD = calendar(slot_event(3))
HOSTILE = {
    # 0x81 is neither utf-8 nor windows-1252 (the fallback when no charset is declared).
    "bad encoding": (Feed(b"BEGIN:VCALENDAR\r\nSUMMARY:caf\x81\r\n"), "not valid utf-8"),
    "html": (
        Feed(b"<!DOCTYPE html><html><body>Connexion</body></html>", content_type="text/html"),
        "HTML instead of iCalendar",
    ),
    "not icalendar": (Feed(b"hello, world\n", content_type="text/plain"), "Not an iCalendar"),
    "broken icalendar": (
        Feed(b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:not-a-date\r\nEND:VCALENDAR\r\n"),
        "",
    ),
    "huge declared": (Feed(b"BEGIN:VCALENDAR\r\n" + b"X" * 5000), "larger than 4096 bytes"),
    "huge streamed": (Feed(endless=True), "larger than 4096 bytes"),
    "endless recurrence": (
        Feed(calendar(slot_event(3, minutes=30, extra="RRULE:FREQ=HOURLY"))),
        "More than 100 slots",
    ),
    # Its only event skipped: a feed none of whose slots can be used fails as a whole.
    "wrong time zone": (Feed(calendar(slot_event(3, tzid="Europe/Pariss"))), "unknown time zone"),
    "not found": (Feed(b"", status=404), "HTTP 404"),
    "too slow": (Feed(GOOD, delay=1.5), "no answer within 1 s"),
    "always down": (Feed(GOOD, fail_first=10), "after 3 tries: HTTP 503"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_hostile_feed_fails_with_its_reason_and_changes_nothing(
    case, client, territory, server, session, monkeypatch
):
    monkeypatch.setattr(get_settings(), "feed_max_bytes", 4096)
    monkeypatch.setattr(get_settings(), "feed_max_slots", 100)
    good = Feed(calendar(slot_event(3), slot_event(4)))
    url = server.serve("/agenda.ics", good)
    await configure(client, territory, url)
    assert (await import_now(client, territory))["added"] == 2
    before = [(s.start, s.status) for s in await imported_slots(session, territory)]

    hostile, reason = HOSTILE[case]
    server.feeds["/agenda.ics"] = hostile
    result = await import_now(client, territory)
    assert result["status"] == "failed", result
    assert reason in result["reason"]
    assert (result["added"], result["removed"]) == (0, 0)
    session.expire_all()
    assert [(s.start, s.status) for s in await imported_slots(session, territory)] == before
    feed = (
        await client.get(
            f"/v1/practitioners/{territory.practitioner_id}/agenda-feed", headers=territory.practice
        )
    ).json()
    assert feed["last_status"] == "failed" and feed["last_error"] == result["reason"]


async def test_a_feed_that_fails_once_is_retried(client, territory, server):
    url = server.serve("/agenda.ics", Feed(calendar(slot_event(3)), fail_first=2))
    await configure(client, territory, url)
    result = await import_now(client, territory)
    assert (result["status"], result["added"]) == ("ok", 1)
    assert len(server.hits) == 3


async def test_imports_are_listed_newest_first(client, territory, server):
    url = server.serve("/agenda.ics", Feed(calendar(slot_event(3))))
    await configure(client, territory, url)
    await import_now(client, territory)
    server.feeds["/agenda.ics"] = Feed(b"<html>", content_type="text/html")
    await import_now(client, territory)
    r = await client.get(
        f"/v1/practitioners/{territory.practitioner_id}/agenda-feed/imports",
        headers=territory.coordinator,
    )
    assert [i["status"] for i in r.json()] == ["failed", "ok"]


async def test_job_imports_each_due_feed_once(client, territory, server, sessionmaker):
    url = server.serve("/agenda.ics", Feed(calendar(slot_event(3))))
    await configure(client, territory, url)
    async with feed_client() as http:
        first = await import_due_feeds(sessionmaker, http, concurrency=1)
        second = await import_due_feeds(sessionmaker, http, concurrency=1)
    assert (first["feeds"], first["ok"]) == (1, 1)
    assert second["feeds"] == 0  # claimed one poll interval ahead


async def test_deleting_the_feed_removes_its_free_slots_only(client, territory, server, session):
    url = server.serve("/agenda.ics", Feed(calendar(slot_event(3), slot_event(4))))
    await configure(client, territory, url)
    await import_now(client, territory)
    slots = await imported_slots(session, territory)
    assert (await book(client, territory, str(slots[0].id))).status_code == 201
    r = await client.delete(
        f"/v1/practitioners/{territory.practitioner_id}/agenda-feed", headers=territory.practice
    )
    assert r.json() == {"created": 0, "removed": 1, "kept": 1}
    r = await client.get(
        f"/v1/practitioners/{territory.practitioner_id}/agenda-feed", headers=territory.practice
    )
    assert_problem(r, 404)


async def test_only_the_practice_and_coordinator_manage_a_feed(
    client, territory, other_territory, server
):
    path = f"/v1/practitioners/{territory.practitioner_id}/agenda-feed"
    body = {"url": server.serve("/a.ics", Feed(GOOD)), "format": "ical"}
    assert (await client.put(path, json=body, headers=territory.regulator)).status_code == 403
    assert (await client.put(path, json=body, headers=territory.dashboard)).status_code == 403
    r = await client.put(path, json=body, headers=other_territory.practice)
    assert r.status_code in (403, 404)
    assert (await client.put(path, json=body, headers=territory.coordinator)).status_code == 201


async def test_feed_urls_must_be_public_https(client, territory, monkeypatch):
    monkeypatch.setattr(get_settings(), "feed_allow_insecure_urls", False)
    path = f"/v1/practitioners/{territory.practitioner_id}/agenda-feed"
    for url, message in (
        ("http://agenda.example.fr/a.ics", "https"),
        ("https://127.0.0.1/a.ics", "public"),
        ("https://10.1.2.3/a.ics", "public"),
        ("https://intranet.local/a.ics", "public"),
    ):
        r = await client.put(path, json={"url": url, "format": "ical"}, headers=territory.practice)
        assert message in assert_problem(r, 422)["errors"][0]["msg"], url


async def test_bad_feed_configuration_is_422(client, territory):
    path = f"/v1/practitioners/{territory.practitioner_id}/agenda-feed"
    for body in (
        {"url": "https://a.example/a.ics", "format": "csv"},
        {"url": "not a url", "format": "ical"},
        {"url": "https://a.example/a.ics", "format": "ical", "slot_minutes": 2},
        {"url": "https://a.example/a.ics", "format": "ical", "colour": "red"},
    ):
        assert_problem(await client.put(path, json=body, headers=territory.practice), 422)
