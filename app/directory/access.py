"""Who may read and write the directory, and how a write is flushed: a unique violation
becomes a 409, a patch sets only the fields it carries. Services flush, never commit."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, Forbidden
from app.security import ADMIN, COORDINATOR, SAS_PLATFORM, Caller
from app.validators import StrictModel

DIRECTORY_WRITERS = (ADMIN, COORDINATOR)


def directory_reader(caller: Caller) -> None:
    """The national SAS platform reads slots and manages regulator accounts, nothing else."""
    if caller.role == SAS_PLATFORM:
        raise Forbidden("The SAS platform key cannot read the directory")


async def flush_or_conflict(session: AsyncSession, message: str) -> None:
    """Flush inside a savepoint so a constraint violation becomes a 409, not a broken session."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(message) from exc


def apply_patch(entity: Any, patch: StrictModel) -> None:
    for name, value in patch.model_dump(exclude_unset=True).items():
        setattr(entity, name, value)
