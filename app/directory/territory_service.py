"""Territories (a CPTS each): create, read, change, delete; their time zones."""

from __future__ import annotations

import uuid

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory import schemas
from app.directory.access import DIRECTORY_WRITERS, apply_patch, directory_reader, flush_or_conflict
from app.directory.models import Practice, Territory
from app.errors import Conflict, Forbidden, NotFound
from app.pagination import fetch_page
from app.security import ADMIN, Caller


async def create_territory(
    session: AsyncSession, caller: Caller, data: schemas.TerritoryIn
) -> Territory:
    caller.require(ADMIN)
    territory = Territory(**data.model_dump())
    session.add(territory)
    await session.flush()
    return territory


async def get_territory(
    session: AsyncSession, caller: Caller, territory_id: uuid.UUID
) -> Territory:
    directory_reader(caller)
    territory = await session.get(Territory, territory_id)
    if territory is None or not caller.sees_territory(territory.id):
        raise NotFound("Territory not found")
    return territory


async def list_territories(
    session: AsyncSession, caller: Caller, *, cursor: str | None, limit: int
) -> tuple[list[Territory], str | None]:
    directory_reader(caller)
    stmt = select(Territory)
    if not caller.instance_wide:
        stmt = stmt.where(Territory.id.in_(caller.territory_ids))
    return await fetch_page(
        session,
        stmt,
        sort_col=Territory.created_at,
        id_col=Territory.id,
        cursor=cursor,
        limit=limit,
    )


async def update_territory(
    session: AsyncSession, caller: Caller, territory_id: uuid.UUID, data: schemas.TerritoryPatch
) -> Territory:
    caller.require(*DIRECTORY_WRITERS)
    territory = await get_territory(session, caller, territory_id)
    if caller.role != ADMIN and data.timezone not in (None, territory.timezone):
        raise Forbidden("Only an admin may change a territory's time zone")
    apply_patch(territory, data)
    await session.flush()
    return territory


async def delete_territory(session: AsyncSession, caller: Caller, territory_id: uuid.UUID) -> None:
    caller.require(ADMIN)
    territory = await get_territory(session, caller, territory_id)
    if await session.scalar(select(exists().where(Practice.territory_id == territory.id))):
        raise Conflict("The territory still has practices; delete them first")
    await session.delete(territory)
    await flush_or_conflict(session, "The territory is still referenced")


async def territory_zones(
    session: AsyncSession, territory_ids: set[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """IANA zone of each territory, to render timestamps in local time."""
    if not territory_ids:
        return {}
    rows = await session.execute(
        select(Territory.id, Territory.timezone).where(Territory.id.in_(territory_ids))
    )
    return {tid: tz for tid, tz in rows}
