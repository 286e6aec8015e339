"""Agenda import: a practitioner's slots kept in step with a feed from the practice's own
software. One import fetches the feed outside any transaction, reads it (iCalendar or FHIR),
then applies its slots in one transaction (feed_apply.py); the due feeds are imported
together, a few fetches at a time. A feed that cannot be fetched or read as a whole is
recorded as a failed import with its reason and changes nothing; no exception escapes that
recording. `run_import` and `import_due_feeds` own their transactions because HTTP must
never run inside one. A feed's settings and import records are feeds.py's."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.activity.service import record
from app.clock import now_utc
from app.config import get_settings
from app.directory.models import Territory
from app.errors import NotFound
from app.sas_bridge.feed_apply import Outcome, apply_slots
from app.sas_bridge.feed_fetch import FeedError, fetch
from app.sas_bridge.feed_ical import parse_ical
from app.sas_bridge.feed_models import AgendaFeed, AgendaImport
from app.sas_bridge.feed_parse import FeedSlot, Window, parse_fhir_page
from app.sas_bridge.feeds import prune_imports
from app.scheduling.rules import zone

log = logging.getLogger(__name__)


FEED_ACCEPT = {
    "ical": "text/calendar, text/plain;q=0.5, */*;q=0.1",
    "fhir": "application/fhir+json, application/json;q=0.9, */*;q=0.1",
}


CONCURRENT_FETCHES = 4


@dataclass(frozen=True)
class FeedConfig:
    id: uuid.UUID
    practitioner_id: uuid.UUID
    territory_id: uuid.UUID
    format: str
    url: str
    category: str
    modality: str
    slot_minutes: int | None
    etag: str | None
    last_modified: str | None
    content_sha256: str | None
    timezone: str


async def _load(factory: async_sessionmaker[AsyncSession], feed_id: uuid.UUID) -> FeedConfig:
    async with factory() as session:
        row = (
            await session.execute(
                select(AgendaFeed, Territory.timezone)
                .join(Territory, Territory.id == AgendaFeed.territory_id)
                .where(AgendaFeed.id == feed_id)
            )
        ).one_or_none()
        if row is None:
            raise NotFound("Agenda feed not found")
        feed, timezone = row
        return FeedConfig(
            feed.id,
            feed.practitioner_id,
            feed.territory_id,
            feed.format,
            feed.url,
            feed.category,
            feed.modality,
            feed.slot_minutes,
            feed.etag,
            feed.last_modified,
            feed.content_sha256,
            timezone,
        )


@dataclass
class Read:
    status: str  # ok | not_modified
    slots: list[FeedSlot]
    size: int = 0
    etag: str | None = None
    last_modified: str | None = None
    digest: str | None = None
    skipped: list[dict[str, Any]] = field(default_factory=list)
    skipped_count: int = 0
    encoding: str | None = None


async def read_feed(http: httpx.AsyncClient, config: FeedConfig, now: datetime) -> Read:
    settings = get_settings()
    tz = zone(config.timezone)
    window = Window(now, now + timedelta(days=settings.horizon_days))
    fetched = await fetch(
        http,
        config.url,
        etag=config.etag,
        last_modified=config.last_modified,
        accept=FEED_ACCEPT[config.format],
    )
    if fetched.status == 304:
        return Read("not_modified", [])
    if config.format == "ical":
        digest = hashlib.sha256(fetched.body).hexdigest()
        if digest == config.content_sha256:
            return Read("not_modified", [], len(fetched.body), fetched.etag, fetched.last_modified)
        # Expanding recurrences is CPU work: off the event loop, which serves requests.
        feed = await asyncio.to_thread(
            parse_ical,
            fetched.body,
            fetched.content_type,
            tz=tz,
            window=window,
            category=config.category,
            modality=config.modality,
            slot_minutes=config.slot_minutes,
            max_slots=settings.feed_max_slots,
        )
        return Read(
            "ok",
            feed.slots,
            len(fetched.body),
            fetched.etag,
            fetched.last_modified,
            digest,
            feed.skipped_list,
            feed.skipped_events,
            feed.encoding,
        )
    # FHIR: every page of the search, within the same size and slot limits.
    page = parse_fhir_page(
        fetched.body, fetched.content_type, window=window, modality=config.modality
    )
    slots, skipped, size, pages = list(page.slots), list(page.skipped), len(fetched.body), 1
    encoding, following = page.encoding, page.following
    while following:
        pages += 1
        if pages > settings.feed_max_pages:
            raise FeedError(f"More than {settings.feed_max_pages} pages of slots")
        if size >= settings.feed_max_bytes:
            raise FeedError(f"The feed is larger than {settings.feed_max_bytes} bytes")
        next_page = await fetch(
            http, following, limit=settings.feed_max_bytes - size, accept=FEED_ACCEPT["fhir"]
        )
        size += len(next_page.body)
        page = parse_fhir_page(
            next_page.body, next_page.content_type, window=window, modality=config.modality
        )
        slots += page.slots
        skipped += page.skipped
        following = page.following
        if len(slots) > settings.feed_max_slots:
            raise FeedError(f"More than {settings.feed_max_slots} slots in the next days")
    return Read(
        "ok",
        sorted(set(slots)),
        size,
        fetched.etag,
        fetched.last_modified,
        None,
        skipped[:200],
        len(skipped),
        encoding,
    )


def _nothing_usable(read: Read) -> str | None:
    """A feed whose every slot-to-be was skipped is taken as unreadable as a whole (a change
    of its software's format, say): it fails and changes nothing, instead of emptying the
    practitioner's agenda."""
    if read.status != "ok" or read.slots or not read.skipped_count:
        return None
    first = read.skipped[0]
    return (
        f"None of the {read.skipped_count} events that could be slots can be used; the first, "
        f"{first['uid']}: {first['reason']}"
    )[:500]


async def run_import(
    factory: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    feed_id: uuid.UUID,
    *,
    now: datetime | None = None,
) -> AgendaImport:
    """Fetch and apply one feed; the import record says what happened, whatever happened."""
    config = await _load(factory, feed_id)
    started = now_utc()
    now = now or started
    tz = zone(config.timezone)
    read: Read | None
    try:
        read = await read_feed(http, config, now)
        reason = _nothing_usable(read)
        if reason:
            read = None
    except FeedError as exc:
        read, reason = None, str(exc)[:500]
    except Exception as exc:  # a parser's bug must not leave the feed unrecorded
        # The exception's text may quote the feed (patient names): only its type is logged.
        log.error(
            "agenda feed unreadable",
            extra={"feed_id": str(feed_id), "exception": type(exc).__name__},
        )
        read, reason = None, f"The feed cannot be read ({type(exc).__name__}); retried later"
    async with factory() as session:
        feed = await session.get(AgendaFeed, feed_id, with_for_update=True)
        if feed is None:
            raise NotFound("Agenda feed not found")
        entry = AgendaImport(feed_id=feed.id, started_at=started)
        outcome = Outcome()
        if read is not None and read.status == "ok":
            try:
                async with session.begin_nested():
                    outcome = await apply_slots(session, feed, tz, read.slots, now)
            except Exception:
                log.exception("agenda import failed", extra={"feed_id": str(feed.id)})
                read, reason = None, "The slots could not be saved (internal error); retried later"
        entry.status = "failed" if read is None else read.status
        if read is not None and read.status == "ok" and read.skipped_count:
            entry.status = "partial"
            reason = (
                f"{read.skipped_count} event(s) of the feed could not be slots: listed in skipped"
            )
        entry.reason = reason
        entry.bytes = read.size if read else 0
        entry.slots_in_feed = len(read.slots) if read else 0
        entry.added, entry.removed, entry.unchanged = (
            outcome.added,
            outcome.removed,
            outcome.unchanged,
        )
        entry.conflicts = outcome.conflicts
        entry.skipped = read.skipped if read else []
        entry.skipped_count = read.skipped_count if read else 0
        entry.encoding = read.encoding if read else None
        entry.finished_at = now_utc()
        session.add(entry)
        feed.last_attempt_at = started
        feed.last_status = entry.status
        feed.last_error = reason
        if read is not None:
            feed.last_success_at = started
            if read.status == "ok":
                feed.etag, feed.last_modified = read.etag, read.last_modified
                feed.content_sha256 = read.digest
                feed.last_skipped = read.skipped_count
        await session.flush()
        await prune_imports(session, feed.id)
        await record(
            session,
            "feed.imported" if read is not None else "feed.failed",
            territory_id=feed.territory_id,
            practitioner_id=feed.practitioner_id,
            subject_id=entry.id,
            status=entry.status,
            added=entry.added,
            removed=entry.removed,
            conflicts=len(entry.conflicts),
            skipped=entry.skipped_count,
        )
        await session.commit()
        await session.refresh(entry)
    log.info(
        "agenda import",
        extra={
            "feed_id": str(feed_id),
            "status": entry.status,
            "added": entry.added,
            "removed": entry.removed,
            "conflicts": len(entry.conflicts),
            "skipped": entry.skipped_count,
        },
    )
    return entry


async def import_due_feeds(
    factory: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    *,
    now: datetime | None = None,
    batch: int = 50,
    concurrency: int = CONCURRENT_FETCHES,
) -> dict[str, int]:
    """The periodic job. Due feeds are claimed by moving their next fetch one poll interval
    ahead (SKIP LOCKED), so each feed is imported by exactly one process even with several
    workers, and a process that dies mid-import only delays that feed by one interval."""
    now = now or now_utc()
    interval = timedelta(minutes=get_settings().feed_poll_minutes)
    async with factory() as session:
        due = (
            select(AgendaFeed.id)
            .where(AgendaFeed.active, AgendaFeed.next_fetch_at <= now)
            .order_by(AgendaFeed.next_fetch_at)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        claimed = list(
            (
                await session.scalars(
                    update(AgendaFeed)
                    .where(AgendaFeed.id.in_(due.scalar_subquery()))
                    .values(next_fetch_at=now + interval)
                    .returning(AgendaFeed.id)
                )
            ).all()
        )
        await session.commit()
    gate = asyncio.Semaphore(concurrency)
    counts = {"feeds": len(claimed), "ok": 0, "partial": 0, "not_modified": 0, "failed": 0}

    async def one(feed_id: uuid.UUID) -> None:
        async with gate:
            try:
                entry = await run_import(factory, http, feed_id, now=now)
            except NotFound:
                return  # deleted meanwhile
            counts[entry.status] += 1

    await asyncio.gather(*(one(feed_id) for feed_id in claimed))
    return counts
