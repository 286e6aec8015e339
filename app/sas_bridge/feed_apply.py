"""A feed's slots applied to the published ones: new slots are added, vanished free ones
removed, booked or held ones never touched (reported as conflicts). Every slot of the feed is
accounted for: added, unchanged, or a conflict naming what it overlaps (a slot published
otherwise, or another event of the same feed). Flushes, never commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.sas_bridge.feed_models import AgendaFeed
from app.sas_bridge.feed_parse import FeedSlot
from app.scheduling.models import Slot
from app.scheduling.offer_events import record_offer
from app.scheduling.publishers import lock_publication
from app.scheduling.slot_writes import NewSlot, insert_slots, offered_slots, withdraw_slots


@dataclass
class Outcome:
    added: int = 0
    removed: int = 0
    unchanged: int = 0
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def not_imported(self) -> int:
        return sum(1 for c in self.conflicts if c["kind"] == "not_imported")


def conflict(
    kind: str, start: datetime, end: datetime, tz: ZoneInfo, reason: str, **extra: Any
) -> dict[str, Any]:
    return {
        "kind": kind,
        "start": start.astimezone(tz).isoformat(),
        "end": end.astimezone(tz).isoformat(),
        "reason": reason,
        **{name: value for name, value in extra.items() if value},
    }


def _hhmm(when: datetime, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def without_overlaps(
    wanted: list[FeedSlot], tz: ZoneInfo
) -> tuple[list[FeedSlot], list[dict[str, Any]]]:
    """The feed's slots that overlap none before them, and a conflict for each of the others
    naming the event it overlaps: two events of one feed at the same time are one slot."""
    kept: list[FeedSlot] = []
    conflicts = []
    for slot in sorted(wanted, key=lambda s: (s.start, s.end, s.uid, s.modality)):
        if kept and slot.start < kept[-1].end:
            other = kept[-1]
            conflicts.append(
                conflict(
                    "not_imported",
                    slot.start,
                    slot.end,
                    tz,
                    f"overlaps event {other.uid or '?'} of the same feed "
                    f"({_hhmm(other.start, tz)}-{other.end.astimezone(tz):%H:%M}): not imported",
                    uid=slot.uid,
                    with_uid=other.uid,
                )
            )
        else:
            kept.append(slot)
    return kept, conflicts


async def apply_slots(
    session: AsyncSession,
    feed: AgendaFeed,
    tz: ZoneInfo,
    wanted: list[FeedSlot],
    now: datetime,
) -> Outcome:
    """Make the practitioner's future imported slots those of the feed."""
    await lock_publication(session, feed.practitioner_id)
    existing = (
        await session.execute(
            select(Slot.id, Slot.start, Slot.end, Slot.modality, Slot.visibility, Slot.status)
            .where(
                Slot.practitioner_id == feed.practitioner_id,
                Slot.source == "import",
                Slot.start > now,
            )
            .with_for_update()
        )
    ).all()
    accepted, overlapping = without_overlaps(wanted, tz)
    desired = {(s.start, s.end, s.modality, feed.visibility): s for s in accepted}
    have = {(r.start, r.end, r.modality, r.visibility): r for r in existing}
    outcome = Outcome(conflicts=overlapping)
    stale = []
    for key, row in have.items():
        if key in desired:
            outcome.unchanged += 1
        elif row.status in ("free", "unavailable"):
            stale.append(row.id)
        else:
            outcome.conflicts.append(
                conflict(
                    "kept",
                    row.start,
                    row.end,
                    tz,
                    f"{row.status} slot no longer in the feed: kept",
                    slot_id=str(row.id),
                )
            )
    if stale:
        outcome.removed = await withdraw_slots(
            session, [Slot.id.in_(stale)], tz, subject_id=feed.id
        )
    new = sorted(key for key in desired if key not in have)
    candidates = [
        NewSlot(
            feed.practitioner_id,
            feed.territory_id,
            None,
            "import",
            start,
            end,
            modality,
            visibility,
        )
        for start, end, modality, visibility in new
    ]
    inserted = await insert_slots(session, candidates)
    outcome.added = len(inserted)
    refused = [c for c in candidates if (c.practitioner_id, c.start) not in inserted]
    if refused:
        others = await _slots_around(session, feed.practitioner_id, refused)
        for c in refused:
            other = next((o for o in others if o.start < c.end and o.end > c.start), None)
            event = desired[(c.start, c.end, c.modality, c.visibility)].uid
            where = (
                f"slot {other.id} ({SOURCE_TEXT.get(other.source, other.source)}, {other.status}, "
                f"{_hhmm(other.start, tz)}-{other.end.astimezone(tz):%H:%M})"
                if other is not None
                else "another slot"
            )
            outcome.conflicts.append(
                conflict(
                    "not_imported",
                    c.start,
                    c.end,
                    tz,
                    f"overlaps {where}: not imported",
                    slot_id=str(other.id) if other is not None else None,
                    uid=event,
                )
            )
    await record_offer(
        session,
        "slots.offered",
        offered_slots(candidates, inserted),
        tz,
        subject_id=feed.id,
    )
    return outcome


SOURCE_TEXT = {"rule": "from a rule", "manual": "published by hand", "import": "imported"}


async def _slots_around(
    session: AsyncSession, practitioner_id: uuid.UUID, refused: list[NewSlot]
) -> list[Any]:
    """The practitioner's slots in the span of the refused feed slots (one query)."""
    return list(
        (
            await session.execute(
                select(Slot.id, Slot.start, Slot.end, Slot.source, Slot.status)
                .where(
                    Slot.practitioner_id == practitioner_id,
                    Slot.start < max(c.end for c in refused),
                    Slot.end > min(c.start for c in refused),
                )
                .order_by(Slot.start)
            )
        ).all()
    )
