"""The preview of a rule: the slots it would create, and what is in their way. Writes nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import now_utc
from app.config import get_settings
from app.scheduling import schemas
from app.scheduling.models import Slot
from app.scheduling.publication import rule_spec, validate_spec
from app.scheduling.publishers import publishing_practitioner
from app.scheduling.rules import expand_rule
from app.security import Caller


@dataclass(frozen=True)
class PreviewSlot:
    """A slot a rule would create over the horizon, and what is in its way, if anything."""

    start: datetime
    end: datetime
    blocked_by: Slot | None = None  # an existing slot: the rule would be refused (409)
    kept: bool = False  # the edited rule's own held or booked slot, which stays as it is


async def preview_rule(
    session: AsyncSession,
    caller: Caller,
    practitioner_id: uuid.UUID,
    data: schemas.RuleIn,
    *,
    rule_id: uuid.UUID | None = None,
) -> tuple[list[PreviewSlot], ZoneInfo]:
    """The slots `create_rule` (or `update_rule` of `rule_id`) would create now, from the same
    validation and expansion, and the existing slots that would refuse them. Writes nothing."""
    practitioner, tz = await publishing_practitioner(session, caller, practitioner_id)
    validate_spec(rule_spec(data))
    now = now_utc()
    window_end = now + timedelta(days=get_settings().horizon_days)
    wanted = expand_rule(rule_spec(data), tz, now, window_end)
    if not wanted:
        return [], tz
    existing_stmt = (
        select(Slot)
        .where(
            Slot.practitioner_id == practitioner.id,
            Slot.start < wanted[-1][1],
            Slot.end > wanted[0][0],
        )
        .order_by(Slot.start)
    )
    if rule_id is not None:  # an edit first removes the rule's own future free slots
        existing_stmt = existing_stmt.where(
            ~and_(
                Slot.rule_id == rule_id,
                Slot.start > now,
                Slot.status.in_(("free", "unavailable")),
            )
        )
    existing = list((await session.scalars(existing_stmt)).all())
    preview: list[PreviewSlot] = []
    i = 0
    for start, end in wanted:  # both sorted; existing slots never overlap one another
        while i < len(existing) and existing[i].end <= start:
            i += 1
        hit = existing[i] if i < len(existing) and existing[i].start < end else None
        kept = bool(hit and rule_id and hit.rule_id == rule_id and hit.status in ("held", "booked"))
        preview.append(PreviewSlot(start, end, None if kept else hit, kept))
    return preview, tz
