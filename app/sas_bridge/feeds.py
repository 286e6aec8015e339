"""A practitioner's agenda feed (set by the practice for its practitioners, or a coordinator):
its address and format, and the records of its imports, the last IMPORTS_KEPT of each feed.
Services flush, never commit."""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.service import record
from app.clock import now_utc
from app.config import get_settings
from app.errors import NotFound
from app.outbound_urls import check_registered_url
from app.sas_bridge import schemas
from app.sas_bridge.feed_models import AgendaFeed, AgendaImport
from app.scheduling.models import Slot
from app.scheduling.publishers import lock_publication, publishing_practitioner
from app.scheduling.schemas import MaterializationOut
from app.scheduling.slot_writes import count_slots, withdraw_slots
from app.security import Caller

IMPORTS_KEPT = 50  # per feed


async def set_feed(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID, data: schemas.FeedIn
) -> tuple[AgendaFeed, bool]:
    practitioner, _ = await publishing_practitioner(session, caller, practitioner_id, lock=True)
    url = str(data.url)
    check_registered_url(
        url, ["body", "url"], allow_insecure=get_settings().feed_allow_insecure_urls
    )
    feed = await session.scalar(
        select(AgendaFeed).where(AgendaFeed.practitioner_id == practitioner.id)
    )
    created = feed is None
    if feed is None:
        feed = AgendaFeed(practitioner_id=practitioner.id, territory_id=practitioner.territory_id)
        session.add(feed)
    values = data.model_dump()
    values["url"] = url
    for name, value in values.items():
        setattr(feed, name, value)
    # A new configuration is read in full at the next run, which is now.
    feed.etag = feed.last_modified = feed.content_sha256 = None
    feed.next_fetch_at = now_utc()
    if created:
        feed.last_status = "pending"
    await session.flush()
    await record(
        session,
        "feed.configured",
        territory_id=practitioner.territory_id,
        practitioner_id=practitioner.id,
        subject_id=feed.id,
        actor_key_id=caller.key_id,
        format=feed.format,
        active=feed.active,
    )
    return feed, created


async def get_feed(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID
) -> tuple[AgendaFeed, ZoneInfo]:
    practitioner, tz = await publishing_practitioner(session, caller, practitioner_id)
    feed = await session.scalar(
        select(AgendaFeed).where(AgendaFeed.practitioner_id == practitioner.id)
    )
    if feed is None:
        raise NotFound("This practitioner has no agenda feed")
    return feed, tz


async def delete_feed(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID
) -> MaterializationOut:
    """The feed goes, and with it its future free slots; held and booked ones stay."""
    feed, tz = await get_feed(session, caller, practitioner_id)
    await lock_publication(session, feed.practitioner_id)
    future = [
        Slot.practitioner_id == feed.practitioner_id,
        Slot.source == "import",
        Slot.start > now_utc(),
    ]
    removed = await withdraw_slots(
        session, [*future, Slot.status.in_(("free", "unavailable"))], tz, subject_id=feed.id
    )
    kept = await count_slots(session, [*future, Slot.status.in_(("held", "booked"))])
    await record(
        session,
        "feed.deleted",
        territory_id=feed.territory_id,
        practitioner_id=feed.practitioner_id,
        subject_id=feed.id,
        actor_key_id=caller.key_id,
        removed=removed,
    )
    await session.delete(feed)
    await session.flush()
    return MaterializationOut(created=0, removed=removed, kept=kept)


async def list_imports(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID, limit: int
) -> tuple[list[AgendaImport], ZoneInfo]:
    feed, tz = await get_feed(session, caller, practitioner_id)
    rows = await session.scalars(
        select(AgendaImport)
        .where(AgendaImport.feed_id == feed.id)
        .order_by(AgendaImport.started_at.desc(), AgendaImport.id)
        .limit(limit)
    )
    return list(rows.all()), tz


async def last_import(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID
) -> tuple[AgendaFeed | None, AgendaImport | None]:
    """The practitioner's feed, if any, and its last import, if any (for the practice page)."""
    practitioner, _ = await publishing_practitioner(session, caller, practitioner_id)
    feed = await session.scalar(
        select(AgendaFeed).where(AgendaFeed.practitioner_id == practitioner.id)
    )
    if feed is None:
        return None, None
    entry = await session.scalar(
        select(AgendaImport)
        .where(AgendaImport.feed_id == feed.id)
        .order_by(AgendaImport.started_at.desc(), AgendaImport.id)
        .limit(1)
    )
    return feed, entry


async def prune_imports(session: AsyncSession, feed_id: uuid.UUID) -> None:
    keep = (
        select(AgendaImport.id)
        .where(AgendaImport.feed_id == feed_id)
        .order_by(AgendaImport.started_at.desc())
        .limit(IMPORTS_KEPT)
    )
    await session.execute(
        delete(AgendaImport).where(AgendaImport.feed_id == feed_id, AgendaImport.id.not_in(keep))
    )
