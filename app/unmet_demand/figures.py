"""The unmet-demand indicator figures of a territory over a period (docs/indicators.md)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory.models import Territory
from app.errors import NotFound, ValidationFailed
from app.security import ADMIN, COORDINATOR, DASHBOARD, Caller
from app.unmet_demand import queries, schemas
from app.validators import local


async def territory_of(
    session: AsyncSession, caller: Caller, territory_id: uuid.UUID | None
) -> tuple[uuid.UUID, str]:
    """The territory whose figures the caller reads, and its zone: a coordinator's or a
    dashboard's own; an admin names it."""
    caller.require(COORDINATOR, DASHBOARD, ADMIN)
    if territory_id is None:
        if caller.territory_id is None:
            raise ValidationFailed.field(["query", "territory_id"], "required for this key")
        territory_id = caller.territory_id
    caller.check_territory(territory_id, "Territory")
    tz = await session.scalar(select(Territory.timezone).where(Territory.id == territory_id))
    if tz is None:
        raise NotFound("Territory not found")
    return territory_id, tz


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


async def summary(
    session: AsyncSession,
    caller: Caller,
    territory_id: uuid.UUID | None,
    start: datetime,
    end: datetime,
) -> schemas.UnmetSummary:
    """SAS requests = placed (slot bookings by a regulator or the platform, surnuméraires)
    + declared unmet; the share placed, and within 48 h; unmet by reason, commune and local
    hour; empty searches apart."""
    territory_id, tz = await territory_of(session, caller, territory_id)
    m = await queries.gap_map(session, territory_id, tz, start, end)
    total = m.total()
    placed = total.placed + total.overbooked
    requests = total.demand
    return schemas.UnmetSummary(
        territory_id=territory_id,
        start=local(start, tz),
        end=local(end, tz),
        sas_requests=requests,
        placed=placed,
        placed_slots=total.placed,
        placed_overbooked=total.overbooked,
        placed_within_48h=m.placed_within_48h,
        unmet=total.unmet,
        share_placed=_ratio(placed, requests),
        share_placed_within_48h=_ratio(m.placed_within_48h, requests),
        empty_searches=total.empty_search,
        slots_offered=total.offer,
        unmet_by_reason=dict(sorted(m.reasons.items())),
        unmet_by_commune={
            c: cell.unmet for c, cell in sorted(m.by_commune().items()) if cell.unmet
        },
        unmet_by_hour=queries.unmet_by_hour(m),
    )


async def gap_cells(
    session: AsyncSession,
    caller: Caller,
    territory_id: uuid.UUID | None,
    start: datetime,
    end: datetime,
) -> list[schemas.GapCell]:
    territory_id, tz = await territory_of(session, caller, territory_id)
    m = await queries.gap_map(session, territory_id, tz, start, end)
    return [
        schemas.GapCell(
            commune_insee=commune,
            day_of_week=dow,
            hour=hour,
            slots_offered=c.offer,
            placed=c.placed,
            placed_overbooked=c.overbooked,
            unmet=c.unmet,
            empty_searches=c.empty_search,
            demand=c.demand,
        )
        for (commune, dow, hour), c in sorted(m.cells.items())
    ]
