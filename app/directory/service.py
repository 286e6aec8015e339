"""Directory rules: who may create, read, change and delete territories, regulators,
practices, practitioners and API keys. Services flush, never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, delete, exists, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.service import record
from app.directory import schemas
from app.directory.communes import names as referential_names
from app.directory.models import ApiKey, Practice, Practitioner, Regulator, Territory
from app.directory.models import regulator_territory as link
from app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.pagination import fetch_page
from app.security import (
    ADMIN,
    COORDINATOR,
    DASHBOARD,
    PRACTICE,
    REGULATOR,
    SAS_PLATFORM,
    Caller,
    new_secret,
)
from app.validators import StrictModel

DIRECTORY_WRITERS = (ADMIN, COORDINATOR)


def _directory_reader(caller: Caller) -> None:
    """The national SAS platform reads slots and manages regulator accounts, nothing else."""
    if caller.role == SAS_PLATFORM:
        raise Forbidden("The SAS platform key cannot read the directory")


async def _flush_or_conflict(session: AsyncSession, message: str) -> None:
    """Flush inside a savepoint so a constraint violation becomes a 409, not a broken session."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(message) from exc


def _apply(entity: Any, patch: StrictModel) -> None:
    for name, value in patch.model_dump(exclude_unset=True).items():
        setattr(entity, name, value)


# Territories ------------------------------------------------------------------------------


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
    _directory_reader(caller)
    territory = await session.get(Territory, territory_id)
    if territory is None or not caller.sees_territory(territory.id):
        raise NotFound("Territory not found")
    return territory


async def list_territories(
    session: AsyncSession, caller: Caller, *, cursor: str | None, limit: int
) -> tuple[list[Territory], str | None]:
    _directory_reader(caller)
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
    _apply(territory, data)
    await session.flush()
    return territory


async def delete_territory(session: AsyncSession, caller: Caller, territory_id: uuid.UUID) -> None:
    caller.require(ADMIN)
    territory = await get_territory(session, caller, territory_id)
    if await session.scalar(select(exists().where(Practice.territory_id == territory.id))):
        raise Conflict("The territory still has practices; delete them first")
    await session.delete(territory)
    await _flush_or_conflict(session, "The territory is still referenced")


# Regulators (SAS) -----------------------------------------------------------------------


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
    _directory_reader(caller)
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
    _apply(regulator, data)
    await session.flush()
    return regulator


async def delete_regulator(session: AsyncSession, caller: Caller, regulator_id: uuid.UUID) -> None:
    caller.require(ADMIN)
    regulator = await get_regulator(session, caller, regulator_id)
    await session.delete(regulator)
    await _flush_or_conflict(session, "The regulator still has bookings")


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


# Practices ------------------------------------------------------------------------------


def _visible_practices(caller: Caller) -> Select[Practice]:
    _directory_reader(caller)
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
    practice = await session.scalar(_visible_practices(caller).where(Practice.id == practice_id))
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
    stmt = _visible_practices(caller)
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
    _apply(practice, data)
    await session.flush()
    return practice


async def delete_practice(session: AsyncSession, caller: Caller, practice_id: uuid.UUID) -> None:
    caller.require(*DIRECTORY_WRITERS)
    practice = await get_practice(session, caller, practice_id)
    if await session.scalar(select(exists().where(Practitioner.practice_id == practice.id))):
        raise Conflict("The practice still has practitioners; delete or move them first")
    await session.delete(practice)
    await _flush_or_conflict(session, "The practice is still referenced")


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


async def commune_centre(session: AsyncSession, insee: str) -> tuple[float, float] | None:
    """Where a commune is, for distances (MT candidates, slot search by commune)."""
    row = (
        await session.execute(
            select(*_commune_columns())
            .where(Practice.commune_insee == insee)
            .group_by(Practice.commune_insee)
        )
    ).one_or_none()
    return (float(row[2]), float(row[3])) if row is not None else None


async def communes(session: AsyncSession, caller: Caller) -> list[Commune]:
    """The communes of the practices the caller can see, by name."""
    rows = (
        await session.execute(
            _visible_practices(caller)
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


# Practitioners --------------------------------------------------------------------------


def _visible_practitioners(caller: Caller) -> Select[Practitioner]:
    _directory_reader(caller)
    stmt = select(Practitioner)
    if caller.instance_wide:
        return stmt
    if caller.role == PRACTICE:
        return stmt.where(Practitioner.practice_id == caller.practice_id)
    return stmt.where(Practitioner.territory_id.in_(caller.territory_ids))


async def _practice_for_write(
    session: AsyncSession, caller: Caller, practice_id: uuid.UUID
) -> Practice:
    practice = await session.scalar(_visible_practices(caller).where(Practice.id == practice_id))
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
    await _flush_or_conflict(
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
    _apply(practitioner, data)
    await _flush_or_conflict(session, "A practitioner with this RPPS already exists")
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
    await _flush_or_conflict(
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


# API keys -------------------------------------------------------------------------------

_SCOPE_FIELDS = {
    ADMIN: (),
    SAS_PLATFORM: (),
    COORDINATOR: ("territory_id",),
    DASHBOARD: ("territory_id",),
    PRACTICE: ("practice_id",),
    REGULATOR: ("regulator_id",),
}


async def create_key(
    session: AsyncSession, caller: Caller | None, data: schemas.KeyIn
) -> tuple[ApiKey, str]:
    """Create a key; `caller=None` is the CLI, which acts as the instance operator."""
    if caller is not None:
        caller.require(ADMIN, COORDINATOR)
    is_admin = caller is None or caller.is_admin
    if not is_admin and data.role in (ADMIN, SAS_PLATFORM):
        raise Forbidden(f"Only an admin may create {data.role} keys")
    scope = dict.fromkeys(("territory_id", "practice_id", "regulator_id"))
    given = {f for f in scope if getattr(data, f) is not None}
    needed = set(_SCOPE_FIELDS[data.role])
    if not is_admin and data.role in (COORDINATOR, DASHBOARD) and data.territory_id is None:
        assert caller is not None
        data = data.model_copy(update={"territory_id": caller.territory_id})
        given.add("territory_id")
    if missing := sorted(needed - given):
        raise ValidationFailed.field(["body", missing[0]], f"required for a {data.role} key")
    if extra := sorted(given - needed):
        raise ValidationFailed.field(["body", extra[0]], f"not allowed for a {data.role} key")

    territory_id: uuid.UUID | None = None
    if data.territory_id is not None:
        territory = await session.get(Territory, data.territory_id)
        if territory is None or (caller is not None and not caller.sees_territory(territory.id)):
            raise ValidationFailed.field(["body", "territory_id"], "unknown territory")
        territory_id = territory.id
    if data.practice_id is not None:
        practice = await session.get(Practice, data.practice_id)
        if practice is None or (
            caller is not None and not caller.sees_territory(practice.territory_id)
        ):
            raise ValidationFailed.field(["body", "practice_id"], "unknown practice")
        territory_id = practice.territory_id
    if data.regulator_id is not None:
        regulator = await session.get(Regulator, data.regulator_id)
        visible = regulator is not None
        if regulator is not None and caller is not None and not caller.is_admin:
            visible = bool(
                await session.scalar(
                    select(
                        exists().where(
                            link.c.regulator_id == regulator.id,
                            link.c.territory_id.in_(caller.territory_ids),
                        )
                    )
                )
            )
            territory_id = caller.territory_id  # the issuing territory, for revocation
        if not visible:
            raise ValidationFailed.field(["body", "regulator_id"], "unknown regulator")

    secret, prefix, digest = new_secret()
    key = ApiKey(
        name=data.name,
        role=data.role,
        prefix=prefix,
        digest=digest,
        territory_id=territory_id,
        practice_id=data.practice_id,
        regulator_id=data.regulator_id,
        created_by=caller.key_id if caller is not None else None,
    )
    session.add(key)
    await session.flush()
    await session.refresh(key)
    if is_admin and data.role in PATIENT_DATA_ROLES:
        await _record_admin_grant(session, caller, key)
    return key, secret


# Roles whose keys read patient data (bookings, MT requests) in their territories.
PATIENT_DATA_ROLES = (COORDINATOR, PRACTICE, REGULATOR)


async def _record_admin_grant(session: AsyncSession, caller: Caller | None, key: ApiKey) -> None:
    """A key with access to patient data minted by an admin (or the CLI) is written to the
    activity log of every territory it can act in, where the territory's coordinator reads it
    (GET /v1/activity, type `key.patient_access_granted`); revoking it is theirs too."""
    if key.regulator_id is not None and key.territory_id is None:
        territories = list(
            await session.scalars(
                select(link.c.territory_id).where(link.c.regulator_id == key.regulator_id)
            )
        )
    else:
        territories = [key.territory_id] if key.territory_id is not None else []
    for territory_id in territories:
        await record(
            session,
            "key.patient_access_granted",
            territory_id=territory_id,
            subject_id=key.id,
            actor_key_id=caller.key_id if caller is not None else None,
            role=key.role,
            by="admin" if caller is not None else "cli",
        )


async def creator_roles(
    session: AsyncSession, keys: Sequence[ApiKey]
) -> dict[uuid.UUID, str | None]:
    """The role of the key that minted each key (None: made with the CLI)."""
    creators = {k.created_by for k in keys if k.created_by is not None}
    roles: dict[uuid.UUID, str] = {}
    if creators:
        rows = await session.execute(select(ApiKey.id, ApiKey.role).where(ApiKey.id.in_(creators)))
        roles = {key_id: role for key_id, role in rows}
    return {k.id: roles.get(k.created_by) if k.created_by else None for k in keys}


def _visible_keys(caller: Caller) -> Select[ApiKey]:
    caller.require(ADMIN, COORDINATOR)
    stmt = select(ApiKey)
    if caller.is_admin:
        return stmt
    # Every key that can act in the territory: those scoped to it (its coordinator's,
    # dashboards', practices', regulator keys it minted) and the unscoped regulator keys (minted
    # by an admin) of every SAS linked to it.
    linked = select(link.c.regulator_id).where(link.c.territory_id == caller.territory_id)
    return stmt.where(
        or_(
            ApiKey.territory_id == caller.territory_id,
            and_(
                ApiKey.role == REGULATOR,
                ApiKey.territory_id.is_(None),
                ApiKey.regulator_id.in_(linked),
            ),
        )
    )


async def list_keys(
    session: AsyncSession, caller: Caller, *, include_revoked: bool, cursor: str | None, limit: int
) -> tuple[list[ApiKey], str | None]:
    stmt = _visible_keys(caller)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    return await fetch_page(
        session, stmt, sort_col=ApiKey.created_at, id_col=ApiKey.id, cursor=cursor, limit=limit
    )


async def get_key(session: AsyncSession, caller: Caller, key_id: uuid.UUID) -> ApiKey:
    key = await session.scalar(_visible_keys(caller).where(ApiKey.id == key_id))
    if key is None:
        raise NotFound("API key not found")
    return key


async def revoke_key(session: AsyncSession, caller: Caller, key_id: uuid.UUID) -> None:
    key = await get_key(session, caller, key_id)
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        await session.flush()
