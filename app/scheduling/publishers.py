"""The practitioner a caller publishes for, its zone, and the lock that serialises the changes
of its slots."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ARRAY, String, any_, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from app.db import DriverStatement
from app.directory.models import Practitioner, Territory
from app.directory.practitioner_service import get_practitioner
from app.errors import NotFound
from app.scheduling.rules import zone
from app.security import ADMIN, COORDINATOR, PRACTICE, Caller

PUBLISHERS = (ADMIN, COORDINATOR, PRACTICE)


async def publishing_practitioner(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID, *, lock: bool = False
) -> tuple[Practitioner, ZoneInfo]:
    """The practitioner (visible to the caller, who must be allowed to publish) and its zone.

    `lock` serialises the publications of one practitioner (a transaction-level advisory
    lock): two multi-slot inserts that wait on each other's rows in the exclusion constraint
    would otherwise deadlock."""
    caller.require(*PUBLISHERS)
    practitioner = await get_practitioner(session, caller, practitioner_id)
    if lock:
        await lock_publication(session, practitioner.id)
    tz = await session.scalar(
        select(Territory.timezone).where(Territory.id == practitioner.territory_id)
    )
    assert tz is not None
    return practitioner, ZoneInfo(tz)


_LOCK_PUBLICATION = DriverStatement(
    text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))").bindparams(
        bindparam("k", type_=String)
    )
)


async def lock_publication(session: AsyncSession, practitioner_id: uuid.UUID) -> None:
    """Serialise every change of one practitioner's slots until the transaction ends."""
    await _LOCK_PUBLICATION.execute(session, k=f"publish:{practitioner_id}")


# The publication hot paths (a one-off slot, a new rule) run on the driver connection (see
# app.db.DriverStatement): plain rows in, plain values out, no ORM object loaded.


@dataclass(frozen=True)
class Publisher:
    """What publishing needs of a practitioner: its ids and its territory's zone."""

    id: uuid.UUID
    territory_id: uuid.UUID
    tz: ZoneInfo


def _publisher_statement(*scope: Any) -> DriverStatement:
    return DriverStatement(
        select(Practitioner.id, Practitioner.territory_id, Territory.timezone)
        .join(Territory, Territory.id == Practitioner.territory_id)
        .where(Practitioner.id == bindparam("practitioner_id", type_=Uuid), *scope)
    )


# By the publisher's role, as `get_practitioner` sees practitioners (IS NOT DISTINCT FROM:
# `==` with None is IS NULL).
_PUBLISHER = {
    ADMIN: _publisher_statement(),
    PRACTICE: _publisher_statement(
        Practitioner.practice_id.is_not_distinct_from(bindparam("practice_id", type_=Uuid))
    ),
    COORDINATOR: _publisher_statement(
        Practitioner.territory_id == any_(bindparam("territory_ids", type_=ARRAY(Uuid)))
    ),
}


async def locked_publisher(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID
) -> Publisher:
    """`publishing_practitioner(..., lock=True)` in two driver statements."""
    caller.require(*PUBLISHERS)
    row = await _PUBLISHER[caller.role].fetchrow(
        session,
        practitioner_id=practitioner_id,
        practice_id=caller.practice_id,
        territory_ids=list(caller.territory_ids),
    )
    if row is None:
        raise NotFound("Practitioner not found")
    await lock_publication(session, row["id"])
    return Publisher(row["id"], row["territory_id"], zone(row["timezone"]))
