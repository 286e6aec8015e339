"""The practitioner's page shows the agenda feed's last import in French: the events it
skipped and why, and its conflicts with what they overlap."""

from datetime import UTC, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest

from app.sas_bridge.feed_ical import parse_ical
from app.sas_bridge.feed_parse import Window
from app.web.feed_report import reason_fr
from tests.feed_server import Feed, FeedServer
from tests.test_agenda_import import (
    calendar,
    configure,
    event,
    import_now,
    local_feeds,  # noqa: F401  (autouse)
    slot_event,
)
from tests.test_agenda_import_events import BAD_EVENTS, bad_event
from tests.test_slot_search import at
from tests.test_web_dashboard import sign_in


@pytest.fixture
async def server():
    s = await FeedServer().start()
    yield s
    await s.stop()


async def test_practitioner_page_lists_skipped_events_and_conflicts_in_french(
    client, territory, server
):
    start = at(3)
    body = calendar(
        slot_event(3, uid="a"),
        event(start + timedelta(minutes=10), start + timedelta(minutes=40), uid="b"),
        event(at(30), at(30) + timedelta(days=2), uid="two-days"),
    )
    await configure(client, territory, server.serve("/a.ics", Feed(body)))
    assert (await import_now(client, territory))["status"] == "partial"
    await sign_in(client, territory.practice, next_="/cabinet")
    page = await client.get(f"/cabinet/medecins/{territory.practitioner_id}")
    assert page.status_code == 200
    text = unescape(page.text)
    assert "Agenda importé" in text
    assert "importé en partie" in text
    assert "Événements écartés (1)" in text
    assert (
        "two-days@cabinet.example" in text and "dure 2 jours : un créneau dure au plus 24 h" in text
    )
    assert "Conflits (1)" in text
    assert "chevauche l'événement a@cabinet.example du même flux : non importé" in text


async def test_practitioner_page_shows_a_failed_import_and_its_reason(client, territory, server):
    url = server.serve("/a.ics", Feed(b"<html>", content_type="text/html"))
    await configure(client, territory, url)
    await import_now(client, territory)
    await sign_in(client, territory.practice, next_="/cabinet")
    text = unescape((await client.get(f"/cabinet/medecins/{territory.practitioner_id}")).text)
    assert "échec : rien n'a changé" in text and "HTML instead of iCalendar" in text


async def test_practitioner_page_without_feed_has_no_import_section(client, territory):
    await sign_in(client, territory.practice, next_="/cabinet")
    page = await client.get(f"/cabinet/medecins/{territory.practitioner_id}")
    assert page.status_code == 200 and "Agenda importé" not in page.text


@pytest.mark.parametrize("kind", BAD_EVENTS)
def test_every_reason_for_skipping_an_event_has_its_french_text(kind):
    bad, _ = bad_event(kind)
    now = datetime.now(UTC)
    read = parse_ical(
        calendar(bad),
        "text/calendar",
        tz=ZoneInfo("Europe/Paris"),
        window=Window(now, now + timedelta(days=14)),
        category="SNP",
        modality="cabinet",
        slot_minutes=None,
        max_slots=100,
    )
    [skipped] = read.skipped
    assert reason_fr(skipped.reason) != skipped.reason, skipped.reason
