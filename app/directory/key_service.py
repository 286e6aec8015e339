"""API keys: who may mint which role in which scope, the secret shown once, revocation."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Select, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.service import record
from app.clock import now_utc
from app.directory import schemas
from app.directory.models import ApiKey, Practice, Regulator, Territory
from app.directory.models import regulator_territory as link
from app.errors import Forbidden, NotFound, ValidationFailed
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
        key.revoked_at = now_utc()
        await session.flush()
