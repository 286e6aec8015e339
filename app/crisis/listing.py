"""The crises a caller may list (`GET /v1/crises`), the latest declared first, paged, each
with its summary figures (from its calls) and the address of its report: the coordinator and
the dashboard see their territory's, the SAS and the practices their territories', an admin
every territory's or the one it names."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.crisis.models import Crisis, CrisisCall
from app.crisis.schemas import CrisisListItem
from app.directory.territory_service import territory_zones
from app.pagination import decode_time_id_cursor, encode_cursor
from app.security import Caller
from app.validators import local


async def _figures(
    session: AsyncSession, ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, int, int]]:
    """Per crisis: volunteers called, calls whose GP opened capacity, slots they opened."""
    rows = await session.execute(
        select(
            CrisisCall.crisis_id,
            func.count(),
            func.count(CrisisCall.opened_at),
            func.coalesce(func.sum(CrisisCall.slots_opened), 0),
        )
        .where(CrisisCall.crisis_id.in_(ids))
        .group_by(CrisisCall.crisis_id)
    )
    return {crisis_id: (int(a), int(b), int(c)) for crisis_id, a, b, c in rows}


def item(crisis: Crisis, tz: str, figures: tuple[int, int, int]) -> CrisisListItem:
    called, honoured, opened = figures

    def at(value: datetime) -> datetime:
        return local(value, tz)

    return CrisisListItem(
        id=crisis.id,
        territory_id=crisis.territory_id,
        plan_id=crisis.plan_id,
        kind=crisis.kind,
        title=crisis.title,
        communes=list(crisis.communes or []),
        started_at=at(crisis.started_at),
        expected_end_at=at(crisis.expected_end_at),
        declared_at=at(crisis.declared_at),
        ended_at=at(crisis.ended_at) if crisis.ended_at else None,
        running=crisis.ended_at is None,
        volunteers_called=called,
        pledges_honoured=honoured,
        slots_opened=opened,
        report=f"/v1/crises/{crisis.id}/report",
    )


async def list_crises(
    session: AsyncSession,
    caller: Caller,
    territory_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[CrisisListItem], str | None]:
    """The crises of the caller's territories (of `territory_id` when given: another
    territory's is a 404), the latest declared first; the cursor is the last one seen."""
    stmt = select(Crisis)
    if territory_id is not None:
        caller.check_territory(territory_id, "Territory")
        stmt = stmt.where(Crisis.territory_id == territory_id)
    elif not caller.instance_wide:
        stmt = stmt.where(Crisis.territory_id.in_(list(caller.territory_ids)))
    if cursor:
        stmt = stmt.where(
            tuple_(Crisis.declared_at, Crisis.id) < tuple_(*decode_time_id_cursor(cursor))
        )
    rows = list(
        await session.scalars(
            stmt.order_by(Crisis.declared_at.desc(), Crisis.id.desc()).limit(limit + 1)
        )
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor([rows[-1].declared_at, rows[-1].id])
    zones = await territory_zones(session, {c.territory_id for c in rows})
    figures = await _figures(session, [c.id for c in rows]) if rows else {}
    return [item(c, zones[c.territory_id], figures.get(c.id, (0, 0, 0))) for c in rows], next_cursor
