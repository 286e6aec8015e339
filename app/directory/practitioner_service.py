"""Practitioners: one RPPS per territory, written through a practice the caller can see; the
MT capacity each sets, recorded for the indicators."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.service import record
from app.directory import schemas
from app.directory.access import DIRECTORY_WRITERS, apply_patch, directory_reader, flush_or_conflict
from app.directory.models import Practice, Practitioner
from app.directory.practice_service import visible_practices
from app.errors import Conflict, NotFound, ValidationFailed
from app.pagination import fetch_page
from app.security import PRACTICE, Caller


def _visible_practitioners(caller: Caller) -> Select[Practitioner]:
    directory_reader(caller)
    stmt = select(Practitioner)
    if caller.instance_wide:
        return stmt
    if caller.role == PRACTICE:
        return stmt.where(Practitioner.practice_id == caller.practice_id)
    return stmt.where(Practitioner.territory_id.in_(caller.territory_ids))


async def _practice_for_write(
    session: AsyncSession, caller: Caller, practice_id: uuid.UUID
) -> Practice:
    practice = await session.scalar(visible_practices(caller).where(Practice.id == practice_id))
    if practice is None:
        raise ValidationFailed.field(["body", "practice_id"], "unknown practice")
    return practice


async def _check_rpps_free(
    session: AsyncSession, territory_id: uuid.UUID, rpps: str, but: uuid.UUID | None = None
) -> None:
    stmt = select(Practitioner.id).where(
        Practitioner.territory_id == territory_id, Practitioner.rpps == rpps
    )
    existing = await session.scalar(stmt)
    if existing is not None and existing != but:
        raise Conflict(
            f"A practitioner with RPPS {rpps} already exists in this territory",
            existing_id=str(existing),
        )


async def create_practitioner(
    session: AsyncSession, caller: Caller, data: schemas.PractitionerIn
) -> Practitioner:
    caller.require(*DIRECTORY_WRITERS)
    practice = await _practice_for_write(session, caller, data.practice_id)
    await _check_rpps_free(session, practice.territory_id, data.rpps)
    practitioner = Practitioner(**data.model_dump(), territory_id=practice.territory_id)
    session.add(practitioner)
    await flush_or_conflict(
        session, f"A practitioner with RPPS {data.rpps} already exists in this territory"
    )
    await _capacity_event(session, caller, practitioner)
    return practitioner


async def _capacity_event(
    session: AsyncSession, caller: Caller | None, practitioner: Practitioner
) -> None:
    """The MT capacity indicators are computed from the log: record every capacity set."""
    await record(
        session,
        "mt.capacity_set",
        territory_id=practitioner.territory_id,
        practitioner_id=practitioner.id,
        actor_key_id=caller.key_id if caller else None,
        capacity=practitioner.mt_capacity,
    )


async def get_practitioner(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID
) -> Practitioner:
    practitioner = await session.scalar(
        _visible_practitioners(caller).where(Practitioner.id == practitioner_id)
    )
    if practitioner is None:
        raise NotFound("Practitioner not found")
    return practitioner


async def list_practitioners(
    session: AsyncSession,
    caller: Caller,
    *,
    territory_id: uuid.UUID | None,
    practice_id: uuid.UUID | None,
    rpps: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Practitioner], str | None]:
    stmt = _visible_practitioners(caller)
    if territory_id is not None:
        stmt = stmt.where(Practitioner.territory_id == territory_id)
    if practice_id is not None:
        stmt = stmt.where(Practitioner.practice_id == practice_id)
    if rpps is not None:
        stmt = stmt.where(Practitioner.rpps == rpps)
    return await fetch_page(
        session,
        stmt,
        sort_col=Practitioner.created_at,
        id_col=Practitioner.id,
        cursor=cursor,
        limit=limit,
    )


async def update_practitioner(
    session: AsyncSession,
    caller: Caller,
    practitioner_id: uuid.UUID,
    data: schemas.PractitionerPatch,
) -> Practitioner:
    caller.require(*DIRECTORY_WRITERS)
    practitioner = await get_practitioner(session, caller, practitioner_id)
    if data.practice_id is not None and data.practice_id != practitioner.practice_id:
        practice = await _practice_for_write(session, caller, data.practice_id)
        if practice.territory_id != practitioner.territory_id:
            raise ValidationFailed.field(
                ["body", "practice_id"], "a practitioner can only move within its territory"
            )
    if data.rpps is not None:
        await _check_rpps_free(session, practitioner.territory_id, data.rpps, but=practitioner.id)
    apply_patch(practitioner, data)
    await flush_or_conflict(session, "A practitioner with this RPPS already exists")
    if data.mt_capacity is not None:
        await _capacity_event(session, caller, practitioner)
    return practitioner


async def set_mt_capacity(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID, mt_capacity: int
) -> Practitioner:
    caller.require(*DIRECTORY_WRITERS, PRACTICE)
    practitioner = await get_practitioner(session, caller, practitioner_id)
    practitioner.mt_capacity = mt_capacity
    await session.flush()
    await _capacity_event(session, caller, practitioner)
    return practitioner


async def delete_practitioner(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID
) -> None:
    caller.require(*DIRECTORY_WRITERS)
    practitioner = await get_practitioner(session, caller, practitioner_id)
    territory_id = practitioner.territory_id
    await session.delete(practitioner)
    await flush_or_conflict(
        session, "The practitioner still has bookings or MT patients; cancel or move them first"
    )
    # The MT capacity indicators count active GPs only: the log says when one left.
    await record(
        session,
        "practitioner.deleted",
        territory_id=territory_id,
        practitioner_id=practitioner_id,
        actor_key_id=caller.key_id,
    )
