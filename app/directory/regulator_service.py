"""Regulators (the SAS) and their links to territories."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Select, delete, exists, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory import schemas
from app.directory.access import apply_patch, directory_reader, flush_or_conflict
from app.directory.models import Regulator
from app.directory.models import regulator_territory as link
from app.directory.territory_service import get_territory
from app.errors import Forbidden, NotFound
from app.pagination import fetch_page
from app.security import ADMIN, COORDINATOR, REGULATOR, Caller


async def create_regulator(
    session: AsyncSession, caller: Caller, data: schemas.RegulatorIn
) -> Regulator:
    caller.require(ADMIN)
    regulator = Regulator(**data.model_dump())
    session.add(regulator)
    await session.flush()
    return regulator


async def regulator_territory_ids(
    session: AsyncSession, regulator_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    result: dict[uuid.UUID, list[uuid.UUID]] = {rid: [] for rid in regulator_ids}
    rows = await session.execute(
        select(link.c.regulator_id, link.c.territory_id).where(
            link.c.regulator_id.in_(regulator_ids)
        )
    )
    for regulator_id, territory_id in rows:
        result[regulator_id].append(territory_id)
    return result


def _visible_regulators(caller: Caller) -> Select[Regulator]:
    directory_reader(caller)
    stmt = select(Regulator)
    if caller.instance_wide:
        return stmt
    if caller.role == REGULATOR:
        return stmt.where(Regulator.id == caller.regulator_id)
    if caller.role == COORDINATOR:
        linked = select(link.c.regulator_id).where(link.c.territory_id.in_(caller.territory_ids))
        return stmt.where(Regulator.id.in_(linked))
    raise Forbidden("This role cannot read regulators")


async def get_regulator(
    session: AsyncSession, caller: Caller, regulator_id: uuid.UUID
) -> Regulator:
    regulator = await session.scalar(
        _visible_regulators(caller).where(Regulator.id == regulator_id)
    )
    if regulator is None:
        raise NotFound("Regulator not found")
    return regulator


async def list_regulators(
    session: AsyncSession, caller: Caller, *, cursor: str | None, limit: int
) -> tuple[list[Regulator], str | None]:
    return await fetch_page(
        session,
        _visible_regulators(caller),
        sort_col=Regulator.created_at,
        id_col=Regulator.id,
        cursor=cursor,
        limit=limit,
    )


async def update_regulator(
    session: AsyncSession, caller: Caller, regulator_id: uuid.UUID, data: schemas.RegulatorPatch
) -> Regulator:
    caller.require(ADMIN)
    regulator = await get_regulator(session, caller, regulator_id)
    apply_patch(regulator, data)
    await session.flush()
    return regulator


async def delete_regulator(session: AsyncSession, caller: Caller, regulator_id: uuid.UUID) -> None:
    caller.require(ADMIN)
    regulator = await get_regulator(session, caller, regulator_id)
    await session.delete(regulator)
    await flush_or_conflict(session, "The regulator still has bookings")


async def link_regulator(
    session: AsyncSession, caller: Caller, territory_id: uuid.UUID, regulator_id: uuid.UUID
) -> None:
    caller.require(ADMIN)
    await get_territory(session, caller, territory_id)
    await get_regulator(session, caller, regulator_id)
    already = await session.scalar(
        select(
            exists().where(link.c.regulator_id == regulator_id, link.c.territory_id == territory_id)
        )
    )
    if not already:
        await session.execute(
            insert(link).values(regulator_id=regulator_id, territory_id=territory_id)
        )


async def unlink_regulator(
    session: AsyncSession, caller: Caller, territory_id: uuid.UUID, regulator_id: uuid.UUID
) -> None:
    caller.require(ADMIN)
    result = await session.execute(
        delete(link).where(link.c.regulator_id == regulator_id, link.c.territory_id == territory_id)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound("This regulator is not linked to this territory")
