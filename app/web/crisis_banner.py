"""The banner of the crises running in the territories a page covers (the regulator's search,
the CPTS's slots): kind in French, communes by name, since when and until when."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.crisis import declaration
from app.crisis.calls import KIND_LABELS
from app.crisis.models import Crisis
from app.directory import communes
from app.directory.models import Territory
from app.security import Caller


async def crisis_view(session: AsyncSession, crisis: Crisis, tz: ZoneInfo) -> dict[str, Any]:
    """What a page shows of a crisis: its kind in French, its communes by name, its dates."""
    names = await communes.names(session, crisis.communes)
    return {
        "id": crisis.id,
        "title": crisis.title,
        "kind": KIND_LABELS.get(crisis.kind, crisis.kind),
        "communes": [names.get(c, c) for c in crisis.communes],
        "started": crisis.started_at.astimezone(tz),
        "until": crisis.expected_end_at.astimezone(tz),
        "ended": crisis.ended_at.astimezone(tz) if crisis.ended_at else None,
    }


async def running_crises(session: AsyncSession, caller: Caller) -> list[dict[str, Any]]:
    running = await declaration.running_in(session, caller.territory_ids)
    if not running:
        return []
    zones = dict(
        (
            await session.execute(
                select(Territory.id, Territory.timezone).where(
                    Territory.id.in_([c.territory_id for c in running])
                )
            )
        ).all()
    )
    return [await crisis_view(session, c, ZoneInfo(zones[c.territory_id])) for c in running]
