"""Real calendar exports served as agenda feeds and imported with the test clock set to each
file's dates: each imports with no exception escaping, and gives exactly the slots written by
hand in tests/fixtures/calendars/expected.json. The exports are the test calendars that the
`icalendar` and `recurring-ical-events` wheels (PyPI, declared dependencies) ship, read where
they are installed, and hand-written calendars reproducing the quirks of other programs
(tests/fixtures/calendars/handwritten/); sources and licences in that directory's README."""

import json
import re
import uuid
from datetime import datetime, timedelta
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import pytest

from app.config import get_settings
from app.sas_bridge.feed_fetch import feed_client
from app.sas_bridge.feed_import import run_import
from tests.feed_server import Feed, FeedServer
from tests.test_agenda_import import (
    configure,
    imported_slots,
    local_feeds,  # noqa: F401  (autouse)
)

CORPUS = Path(__file__).parent / "fixtures" / "calendars"
SOURCES: dict[str, Traversable] = {
    "icalendar": files("icalendar") / "tests" / "calendars",
    "recurring_ical_events": files("recurring_ical_events") / "test" / "calendars",
    "handwritten": CORPUS / "handwritten",
}
EXPECTED = {
    name: value
    for name, value in json.loads((CORPUS / "expected.json").read_text()).items()
    if not name.startswith("_")
}


def calendar_file(key: str) -> Traversable:
    source, _, name = key.partition(":")
    return SOURCES[source] / name


@pytest.fixture
async def server():
    s = await FeedServer().start()
    yield s
    await s.stop()


def all_free(body: bytes) -> bytes:
    """Every event of the file marked free (TRANSP:TRANSPARENT), so that each is a slot to be
    (the exports carry no SNP category); nothing else of the file changes."""
    newline = b"\r\n" if b"\r\n" in body else b"\n"
    body = re.sub(rb"(?m)^TRANSP:[^\r\n]*\r?\n", b"", body)
    return re.sub(rb"(?m)^(BEGIN:VEVENT\r?\n)", rb"\1TRANSP:TRANSPARENT" + newline, body)


def test_every_corpus_file_is_there_with_its_expectation_and_its_source():
    handwritten = sorted(f"handwritten:{p.name}" for p in (CORPUS / "handwritten").glob("*.ics"))
    assert handwritten == sorted(k for k in EXPECTED if k.startswith("handwritten:"))
    assert [key for key in EXPECTED if not calendar_file(key).is_file()] == []
    readme = (CORPUS / "README.md").read_text()
    assert [k for k in EXPECTED if f"`{k.partition(':')[2]}`" not in readme] == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_real_export_imports_its_expected_slots(
    name, client, territory, server, sessionmaker, monkeypatch
):
    expected = EXPECTED[name]
    monkeypatch.setattr(get_settings(), "horizon_days", expected["horizon_days"])
    body = all_free(calendar_file(name).read_bytes())
    url = server.serve(f"/{name.replace(':', '/')}", Feed(body, content_type="text/calendar"))
    feed = await configure(client, territory, url)
    async with feed_client() as http:
        entry = await run_import(
            sessionmaker,
            http,
            uuid.UUID(feed["id"]),
            now=datetime.fromisoformat(expected["now"].replace("Z", "+00:00")),
        )
    assert entry.status == expected["status"], (entry.reason, entry.skipped)
    if "reason" in expected:
        assert expected["reason"] in (entry.reason or "")
    if "skipped" in expected:
        reasons = [s["reason"] for s in entry.skipped]
        assert len(reasons) == len(expected["skipped"]), reasons
        assert all(want in got for want, got in zip(expected["skipped"], reasons, strict=True))
    if "encoding" in expected:
        assert entry.encoding == expected["encoding"]
    async with sessionmaker() as session:
        slots = await imported_slots(session, territory)
    got = [(s.start, s.end) for s in slots]
    if "modality" in expected:
        assert {s.modality for s in slots} == {expected["modality"]}
    want = [tuple(datetime.fromisoformat(t) for t in pair) for pair in expected.get("slots", [])]
    assert got == want
    assert entry.added == len(want) and entry.slots_in_feed == len(want)
    assert all(end - start <= timedelta(hours=24) for start, end in got)
