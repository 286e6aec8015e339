"""The SNP offer ledger in the activity log: `slots.offered` and `slots.withdrawn` events say,
per practitioner, modality and visibility, how many slots and minutes each local day gains or
loses. The offer indicators are sums of these events, so they never need the slot table."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.service import record_many


@dataclass(frozen=True)
class OfferedSlot:
    practitioner_id: uuid.UUID
    territory_id: uuid.UUID
    start: datetime
    end: datetime
    modality: str
    visibility: str


# (territory_id, practitioner_id, modality, visibility): one event each.
OfferKey = tuple[uuid.UUID, uuid.UUID, str, str]


def offer_days(
    slots: Iterable[OfferedSlot], tz: ZoneInfo
) -> dict[OfferKey, dict[str, dict[str, int]]]:
    """Slots counted per practitioner, modality and visibility, and per local day:
    `{key: {"2027-03-26": {"slots": 6, "minutes": 120}}}`."""
    groups: dict[OfferKey, dict[str, dict[str, int]]] = defaultdict(dict)
    for s in slots:
        days = groups[(s.territory_id, s.practitioner_id, s.modality, s.visibility)]
        day = days.setdefault(s.start.astimezone(tz).date().isoformat(), {"slots": 0, "minutes": 0})
        day["slots"] += 1
        day["minutes"] += int((s.end - s.start).total_seconds() // 60)
    return groups


def offer_events(
    type_: str,
    groups: dict[OfferKey, dict[str, dict[str, int]]],
    *,
    actor_key_id: uuid.UUID | None = None,
    subject_id: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    """The events of `groups` (see `offer_days`), as `record_many` takes them."""
    assert type_ in ("slots.offered", "slots.withdrawn")
    return [
        {
            "type": type_,
            "territory_id": territory_id,
            "practitioner_id": practitioner_id,
            "subject_id": subject_id,
            "actor_key_id": actor_key_id,
            "data": {"modality": modality, "visibility": visibility, "days": days},
        }
        for (territory_id, practitioner_id, modality, visibility), days in groups.items()
    ]


async def record_offer(
    session: AsyncSession,
    type_: str,
    slots: Iterable[OfferedSlot],
    tz: ZoneInfo,
    *,
    actor_key_id: uuid.UUID | None = None,
    subject_id: uuid.UUID | None = None,
) -> int:
    """One event per practitioner, modality and visibility, with a per-local-day breakdown:
    `{"days": {"2027-03-26": {"slots": 6, "minutes": 120}}, ...}`."""
    return await record_offer_days(
        session, type_, offer_days(slots, tz), actor_key_id=actor_key_id, subject_id=subject_id
    )


async def record_offer_days(
    session: AsyncSession,
    type_: str,
    groups: dict[OfferKey, dict[str, dict[str, int]]],
    *,
    actor_key_id: uuid.UUID | None = None,
    subject_id: uuid.UUID | None = None,
) -> int:
    """`record_offer` from slots already counted per local day: `groups` maps (territory,
    practitioner, modality, visibility) to `{"2027-03-26": {"slots": 6, "minutes": 120}}`."""
    events = offer_events(type_, groups, actor_key_id=actor_key_id, subject_id=subject_id)
    await record_many(session, events)
    return len(events)
