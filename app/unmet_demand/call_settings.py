"""Calls for slots' settings: the coordinator's floors (the territory's, and one per group of
communes) and the GPs who accept calls (their address). The run and the log of calls are
app.unmet_demand.calls. A commune is in one group of a territory at most: the writes of one
territory's groups are serialised (a transaction-level advisory lock) and checked."""

from __future__ import annotations

import uuid

from sqlalchemy import String, bindparam, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory import communes
from app.directory.models import Practice, Practitioner
from app.directory.practitioner_service import get_practitioner
from app.errors import NotFound, ValidationFailed
from app.security import COORDINATOR, PRACTICE, Caller
from app.unmet_demand import schemas
from app.unmet_demand.calls import coordinator_territory
from app.unmet_demand.models import SlotCallAreaFloor, SlotCallFloor, SlotCallOptIn

AREA_NOT_FOUND = "Group of communes not found"
_LOCK_AREAS = text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))").bindparams(
    bindparam("k", type_=String)
)


async def set_floor(
    session: AsyncSession, caller: Caller, data: schemas.FloorIn
) -> schemas.FloorOut:
    territory_id = coordinator_territory(caller)
    await session.execute(
        insert(SlotCallFloor)
        .values(territory_id=territory_id, floor=data.floor, window_hours=data.window_hours)
        .on_conflict_do_update(
            index_elements=["territory_id"],
            set_={"floor": data.floor, "window_hours": data.window_hours, "updated_at": func.now()},
        )
    )
    return schemas.FloorOut(
        territory_id=territory_id, floor=data.floor, window_hours=data.window_hours
    )


async def get_floor(session: AsyncSession, caller: Caller) -> schemas.FloorOut | None:
    """The territory's floor, None when the coordinator has set none."""
    row = await session.get(SlotCallFloor, coordinator_territory(caller))
    if row is None:
        return None
    return schemas.FloorOut(
        territory_id=row.territory_id, floor=row.floor, window_hours=row.window_hours
    )


async def set_opt_in(
    session: AsyncSession,
    caller: Caller,
    practitioner_id: uuid.UUID,
    data: schemas.OptInIn | None,
) -> None:
    """A GP accepts (data) or no longer accepts (None) calls for slots: the coordinator of
    its territory or its practice says so."""
    await _opting_gp(session, caller, practitioner_id)
    if data is None:
        row = await session.get(SlotCallOptIn, practitioner_id)
        if row is not None:
            await session.delete(row)
            await session.flush()
        return
    await session.execute(
        insert(SlotCallOptIn)
        .values(practitioner_id=practitioner_id, email=data.email)
        .on_conflict_do_update(index_elements=["practitioner_id"], set_={"email": data.email})
    )


async def _opting_gp(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID
) -> Practitioner:
    caller.require(COORDINATOR, PRACTICE)
    gp = await get_practitioner(session, caller, practitioner_id)
    if caller.role == PRACTICE and gp.practice_id != caller.practice_id:
        raise NotFound("Practitioner not found")
    return gp


async def get_opt_in(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID
) -> str | None:
    """The address a GP's calls go to; None when the GP does not accept calls."""
    await _opting_gp(session, caller, practitioner_id)
    row = await session.get(SlotCallOptIn, practitioner_id)
    return row.email if row is not None else None


async def list_opt_ins(
    session: AsyncSession, caller: Caller
) -> list[tuple[Practitioner, str, str]]:
    """The territory's GPs who accept calls: each with its practice's name and the address."""
    territory_id = coordinator_territory(caller)
    rows = await session.execute(
        select(Practitioner, Practice.name, SlotCallOptIn.email)
        .join(SlotCallOptIn, SlotCallOptIn.practitioner_id == Practitioner.id)
        .join(Practice, Practice.id == Practitioner.practice_id)
        .where(Practitioner.territory_id == territory_id)
        .order_by(Practitioner.family_name, Practitioner.given_name, Practitioner.id)
    )
    return [(gp, practice, email) for gp, practice, email in rows.all()]


# Groups of communes -----------------------------------------------------------------------


async def _area_out(
    session: AsyncSession, rows: list[SlotCallAreaFloor]
) -> list[schemas.AreaFloorOut]:
    named = await communes.names(session, {c for row in rows for c in row.communes})
    return [
        schemas.AreaFloorOut(
            id=row.id,
            territory_id=row.territory_id,
            name=row.name,
            communes=[
                schemas.AreaCommune(commune_insee=c, commune_name=named.get(c))
                for c in row.communes
            ],
            floor=row.floor,
            window_hours=row.window_hours,
            updated_at=row.updated_at,
        )
        for row in rows
    ]


async def overlapping(
    session: AsyncSession, caller: Caller, name: str, codes: list[str]
) -> dict[str, str]:
    """Of these communes, those already in another group of the territory: code → its name."""
    found = await session.execute(
        select(SlotCallAreaFloor.name, SlotCallAreaFloor.communes).where(
            SlotCallAreaFloor.territory_id == coordinator_territory(caller),
            SlotCallAreaFloor.name != name,
            SlotCallAreaFloor.communes.overlap(codes),
        )
    )
    return {code: other for other, theirs in found.all() for code in theirs if code in codes}


async def put_area_floor(
    session: AsyncSession, caller: Caller, name: str, data: schemas.AreaFloorIn
) -> schemas.AreaFloorOut:
    """Create or replace the group `name` of the coordinator's territory. Its communes must be
    real (the referential) and in no other group of the territory (422 on the item)."""
    territory_id = coordinator_territory(caller)
    codes = await communes.resolve_in_territory(session, territory_id, data.communes)
    await session.execute(_LOCK_AREAS, {"k": f"slot-call-areas:{territory_id}"})
    taken = await overlapping(session, caller, name, codes)
    for i, code in enumerate(codes):
        if code in taken:
            raise ValidationFailed.field(
                ["body", "communes", i],
                f"commune {code} is already in the group of communes {taken[code]!r}",
            )
    values = {"communes": codes, "floor": data.floor, "window_hours": data.window_hours}
    row = await session.scalar(
        insert(SlotCallAreaFloor)
        .values(id=uuid.uuid4(), territory_id=territory_id, name=name, **values)
        .on_conflict_do_update(
            constraint="uq_slot_call_area_floor_territory_name",
            set_={**values, "updated_at": func.now()},
        )
        .returning(SlotCallAreaFloor)
        .execution_options(populate_existing=True)
    )
    assert row is not None
    [out] = await _area_out(session, [row])
    return out


async def list_area_floors(session: AsyncSession, caller: Caller) -> list[schemas.AreaFloorOut]:
    territory_id = coordinator_territory(caller)
    rows = await session.scalars(
        select(SlotCallAreaFloor)
        .where(SlotCallAreaFloor.territory_id == territory_id)
        .order_by(SlotCallAreaFloor.name)
    )
    return await _area_out(session, list(rows))


async def get_area_floor(session: AsyncSession, caller: Caller, name: str) -> schemas.AreaFloorOut:
    territory_id = coordinator_territory(caller)
    row = await session.scalar(
        select(SlotCallAreaFloor).where(
            SlotCallAreaFloor.territory_id == territory_id, SlotCallAreaFloor.name == name
        )
    )
    if row is None:
        raise NotFound(AREA_NOT_FOUND)
    [out] = await _area_out(session, [row])
    return out


async def delete_area_floor(session: AsyncSession, caller: Caller, name: str) -> None:
    """The group goes; its past calls stay in the log, as the territory's (area_id NULL)."""
    territory_id = coordinator_territory(caller)
    gone = await session.scalar(
        delete(SlotCallAreaFloor)
        .where(SlotCallAreaFloor.territory_id == territory_id, SlotCallAreaFloor.name == name)
        .returning(SlotCallAreaFloor.id)
    )
    if gone is None:
        raise NotFound(AREA_NOT_FOUND)
