"""Write activity events in the caller's transaction, so indicators never disagree with data.
An event's instant (`at`) is the service's clock (app.clock), as every other timestamp the
service writes: the indicators count an event in the period of that clock, at any date the
tests set it to."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import (
    ARRAY,
    DateTime,
    Insert,
    String,
    Text,
    bindparam,
    cast,
    insert,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from app.activity.models import ActivityEvent
from app.clock import now_utc
from app.db import DriverStatement


def event_insert(**values: Any) -> Insert:
    """The INSERT of one event, with values or bind parameters (`data`: JSON text), so the
    booking path can compile it once into a larger statement; executed with `event_at`, the
    event's instant."""
    values.setdefault("at", bindparam("event_at", type_=DateTime(timezone=True)))
    if "data" in values:
        values["data"] = cast(type_coerce(values["data"], Text), JSONB)
    return insert(ActivityEvent).values(**values)


async def record(
    session: AsyncSession,
    type_: str,
    *,
    territory_id: uuid.UUID | None,
    practitioner_id: uuid.UUID | None = None,
    subject_id: uuid.UUID | None = None,
    actor_key_id: uuid.UUID | None = None,
    **data: Any,
) -> None:
    """Append one event. `data` must never hold patient data: ids, counts and codes only."""
    await session.execute(
        insert(ActivityEvent).values(
            type=type_,
            territory_id=territory_id,
            practitioner_id=practitioner_id,
            subject_id=subject_id,
            actor_key_id=actor_key_id,
            data=data,
            at=now_utc(),
        )
    )


async def record_many(session: AsyncSession, events: list[dict[str, Any]]) -> None:
    """Append many events in one statement (each dict holds `record`'s arguments, with
    `type` for the type and `data` for the payload)."""
    if events:
        at = now_utc()
        await session.execute(insert(ActivityEvent), [{"at": at, **e} for e in events])


_RECORD_ROWS = DriverStatement(
    text(
        """
        INSERT INTO activity_event (type, territory_id, practitioner_id, subject_id,
                                    actor_key_id, data, at)
        SELECT e.type, e.territory_id, e.practitioner_id, e.subject_id, e.actor_key_id,
               e.data::jsonb, :at
        FROM unnest(:types, :territory_ids, :practitioner_ids, :subject_ids, :actor_key_ids,
                    :data) WITH ORDINALITY
             AS e(type, territory_id, practitioner_id, subject_id, actor_key_id, data, n)
        ORDER BY e.n
        """
    ).bindparams(
        bindparam("types", type_=ARRAY(String)),
        bindparam("territory_ids", type_=ARRAY(Uuid)),
        bindparam("practitioner_ids", type_=ARRAY(Uuid)),
        bindparam("subject_ids", type_=ARRAY(Uuid)),
        bindparam("actor_key_ids", type_=ARRAY(Uuid)),
        bindparam("data", type_=ARRAY(Text)),
        bindparam("at", type_=DateTime(timezone=True)),
    )
)


async def record_rows(session: AsyncSession, events: list[dict[str, Any]]) -> None:
    """`record_many` in one statement on the session's driver connection (see
    app.db.DriverStatement), for the hot paths; the events' ids rise in the list's order."""
    if events:
        await _RECORD_ROWS.execute(
            session,
            types=[e["type"] for e in events],
            territory_ids=[e.get("territory_id") for e in events],
            practitioner_ids=[e.get("practitioner_id") for e in events],
            subject_ids=[e.get("subject_id") for e in events],
            actor_key_ids=[e.get("actor_key_id") for e in events],
            data=[json.dumps(e.get("data", {})) for e in events],
            at=now_utc(),
        )


async def rebuild_rollups(session: AsyncSession) -> None:
    """Empty the indicators' roll-ups (`offer_period`, `booking_state`) and fill them again
    from the whole activity log, with the SQL the log's trigger runs on each new statement
    of events (`activity_rollup_rebuild()`, migration 0020). The trigger keeps them current;
    this repairs them, and the tests check that both agree."""
    await session.execute(text("SELECT activity_rollup_rebuild()"))
