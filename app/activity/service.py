"""Write activity events in the caller's transaction, so indicators never disagree with data."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Insert, Text, cast, insert, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.models import ActivityEvent


def event_insert(**values: Any) -> Insert:
    """The INSERT of one event, with values or bind parameters (`data`: JSON text), so the
    booking path can compile it once into a larger statement."""
    if "data" in values:
        values["data"] = cast(type_coerce(values["data"], Text), JSONB)
    return insert(ActivityEvent).values(**values)


async def record(
    session: AsyncSession,
    type_: str,
    *,
    territory_id: uuid.UUID | None,
    practitioner_id: uuid.UUID | None = None,
    subject_id: uuid.UUID | None = None,
    actor_key_id: uuid.UUID | None = None,
    **data: Any,
) -> None:
    """Append one event. `data` must never hold patient data: ids, counts and codes only."""
    await session.execute(
        insert(ActivityEvent).values(
            type=type_,
            territory_id=territory_id,
            practitioner_id=practitioner_id,
            subject_id=subject_id,
            actor_key_id=actor_key_id,
            data=data,
        )
    )


async def record_many(session: AsyncSession, events: list[dict[str, Any]]) -> None:
    """Append many events in one statement (each dict holds `record`'s arguments, with
    `type` for the type and `data` for the payload)."""
    if events:
        await session.execute(insert(ActivityEvent), events)
