"""Render directory timestamps in each territory's local offset, as the contract asks."""

from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.directory.schemas import TerritoryStamped
from app.directory.territory_service import territory_zones
from app.validators import local

M = TypeVar("M", bound=TerritoryStamped)


async def in_local_time(session: AsyncSession, items: list[M]) -> list[M]:
    zones = await territory_zones(session, {item.territory_id for item in items})
    for item in items:
        item.created_at = local(item.created_at, zones[item.territory_id])
    return items
