"""Write activity events in the caller's transaction, so indicators never disagree with data."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.models import ActivityEvent


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
