"""Practices, and the communes placed at the mean position of their practices."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory import schemas
from app.directory.access import DIRECTORY_WRITERS, apply_patch, directory_reader, flush_or_conflict
from app.directory.communes import names as referential_names
from app.directory.models import Practice, Practitioner, Territory
from app.errors import Conflict, NotFound, ValidationFailed
from app.pagination import fetch_page
from app.security import PRACTICE, Caller


def visible_practices(caller: Caller) -> Select[Practice]:
    directory_reader(caller)
    stmt = select(Practice)
    if caller.instance_wide:
        return stmt
    if caller.role == PRACTICE:
        return stmt.where(Practice.id == caller.practice_id)
    return stmt.where(Practice.territory_id.in_(caller.territory_ids))


async def create_practice(
    session: AsyncSession, caller: Caller, data: schemas.PracticeIn
) -> Practice:
    caller.require(*DIRECTORY_WRITERS)
    territory = await session.get(Territory, data.territory_id)
    if territory is None or not caller.sees_territory(territory.id):
        raise ValidationFailed.field(["body", "territory_id"], "unknown territory")
    practice = Practice(**data.model_dump())
    session.add(practice)
    await session.flush()
    return practice


async def get_practice(session: AsyncSession, caller: Caller, practice_id: uuid.UUID) -> Practice:
    practice = await session.scalar(visible_practices(caller).where(Practice.id == practice_id))
    if practice is None:
        raise NotFound("Practice not found")
    return practice


async def list_practices(
    session: AsyncSession,
    caller: Caller,
    *,
    territory_id: uuid.UUID | None,
    commune_insee: str | None,
    name: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Practice], str | None]:
    stmt = visible_practices(caller)
    if territory_id is not None:
        stmt = stmt.where(Practice.territory_id == territory_id)
    if commune_insee is not None:
        stmt = stmt.where(Practice.commune_insee == commune_insee)
    if name:
        stmt = stmt.where(Practice.name.icontains(name, autoescape=True))
    return await fetch_page(
        session, stmt, sort_col=Practice.created_at, id_col=Practice.id, cursor=cursor, limit=limit
    )


async def update_practice(
    session: AsyncSession, caller: Caller, practice_id: uuid.UUID, data: schemas.PracticePatch
) -> Practice:
    caller.require(*DIRECTORY_WRITERS, PRACTICE)
    practice = await get_practice(session, caller, practice_id)
    apply_patch(practice, data)
    await session.flush()
    return practice


async def delete_practice(session: AsyncSession, caller: Caller, practice_id: uuid.UUID) -> None:
    caller.require(*DIRECTORY_WRITERS)
    practice = await get_practice(session, caller, practice_id)
    if await session.scalar(select(exists().where(Practitioner.practice_id == practice.id))):
        raise Conflict("The practice still has practitioners; delete or move them first")
    await session.delete(practice)
    await flush_or_conflict(session, "The practice is still referenced")


@dataclass(frozen=True)
class Commune:
    """A commune as the directory knows it: placed at the mean position of its practices."""

    insee: str
    name: str | None
    lat: float
    lon: float


def _commune_columns() -> tuple[Any, ...]:
    return (
        Practice.commune_insee,
        func.max(Practice.city),
        func.avg(Practice.lat),
        func.avg(Practice.lon),
    )


async def communes(session: AsyncSession, caller: Caller) -> list[Commune]:
    """The communes of the practices the caller can see, by name."""
    rows = (
        await session.execute(
            visible_practices(caller)
            .with_only_columns(*_commune_columns())
            .group_by(Practice.commune_insee)
        )
    ).all()
    ref = await referential_names(session, (insee for insee, *_ in rows))  # names from the COG
    found = [
        Commune(insee, ref.get(insee, name), float(lat), float(lon))
        for insee, name, lat, lon in rows
    ]
    return sorted(found, key=lambda c: (c.name or c.insee).lower())
