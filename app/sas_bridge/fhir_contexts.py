"""The context a slot is shown with: its practitioner, practice and territory, in one row
each, and what a caller may see of them (territories, visibilities)."""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from sqlalchemy import Uuid, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory import readiness
from app.directory.models import Practice, Practitioner, Territory
from app.sas_bridge import fhir_resources as res
from app.sas_bridge.fhir_params import any_param
from app.scheduling.queries import SEARCH_VISIBILITY
from app.security import ADMIN, COORDINATOR, REGULATOR, SAS_PLATFORM, Caller

READERS = (SAS_PLATFORM, REGULATOR, COORDINATOR, ADMIN)


def context_columns() -> list[Any]:
    return [
        Practitioner.id.label("practitioner_id"),
        Practitioner.rpps,
        Practitioner.family_name,
        Practitioner.given_name,
        Practitioner.profession,
        Practitioner.specialty,
        Practice.id.label("practice_id"),
        Practice.name.label("practice_name"),
        Practice.address,
        Practice.postal_code,
        Practice.city,
        Practice.phone.label("practice_phone"),
        Practice.finess.label("practice_finess"),
        Practice.siret,
        Practice.cabinet_id,
        Practice.booking_url,
        Practice.lat,
        Practice.lon,
        Territory.id.label("territory_id"),
        Territory.name.label("territory_name"),
        Territory.finess.label("territory_finess"),
        Territory.phone.label("territory_phone"),
        Territory.timezone,
        Territory.department,
    ]


CONTEXT_FIELDS = tuple(c.key for c in context_columns())


async def contexts(
    session: AsyncSession,
    caller: Caller,
    *,
    practitioner_id: uuid.UUID | None = None,
    practice_id: uuid.UUID | None = None,
    territory_id: uuid.UUID | None = None,
) -> list[res.Context]:
    """Practitioners (with practice and territory) this caller may read through FHIR."""
    territories, _ = visibility_for(caller)
    stmt = (
        select(*context_columns())
        .select_from(Practitioner)
        .join(Practice, Practice.id == Practitioner.practice_id)
        .join(Territory, Territory.id == Practitioner.territory_id)
    )
    if territories is not None:
        stmt = stmt.where(Practitioner.territory_id.in_(territories))
    if caller.role == SAS_PLATFORM:
        stmt = stmt.where(readiness.territory_ready(), readiness.practice_ready())
    if practitioner_id is not None:
        stmt = stmt.where(Practitioner.id == practitioner_id)
    if practice_id is not None:
        stmt = stmt.where(Practice.id == practice_id)
    if territory_id is not None:
        stmt = stmt.where(Practitioner.territory_id == territory_id)
    rows = (await session.execute(stmt.limit(1000))).all()
    return [res.Context(**r._asdict()) for r in rows]


def visibility_for(caller: Caller) -> tuple[frozenset[uuid.UUID] | None, tuple[str, ...]]:
    """The territories (None: all) and the slot visibilities the caller reads: the search's
    (`SEARCH_VISIBILITY`), so the platform and regulators never see `cpts` slots."""
    caller.require(*READERS)
    if caller.role in (REGULATOR, COORDINATOR):
        return caller.territory_ids, SEARCH_VISIBILITY[caller.role]
    return None, SEARCH_VISIBILITY[caller.role]


@cache
def context_statement() -> Any:
    """The practitioners of the slots found, with practice and territory (the search's second
    statement, whatever their number; `practitioner_ids` is bound at execution). Made once:
    it does not change."""
    return (
        select(*context_columns())
        .select_from(Practitioner)
        .join(Practice, Practice.id == Practitioner.practice_id)
        .join(Territory, Territory.id == Practitioner.territory_id)
        .where(Practitioner.id == any_param("practitioner_ids", Uuid))
    )
