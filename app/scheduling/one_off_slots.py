"""One-off slots: a slot published outside any rule, with its offer event, in one statement."""

from __future__ import annotations

import json
import uuid
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import (
    DateTime,
    String,
    Text,
    bindparam,
    cast,
    exists,
    insert,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from app.activity.models import ActivityEvent
from app.clock import now_utc
from app.db import DriverStatement, driver_connection
from app.errors import Conflict, ValidationFailed
from app.scheduling import schemas
from app.scheduling.models import Slot, Unavailability
from app.scheduling.offer_events import OfferedSlot, offer_days, offer_events
from app.scheduling.publishers import locked_publisher
from app.scheduling.slot_writes import overlap_conflict, overlapping_slots
from app.security import Caller


def _one_off_statement() -> DriverStatement:
    """The slot, unless inside one of its practitioner's unavailabilities, and its offer
    event, in one statement: the slot's id, or no row when it is inside an unavailability.
    An overlap is the exclusion constraint's error."""
    practitioner_id = bindparam("practitioner_id", type_=Uuid)
    territory_id = bindparam("territory_id", type_=Uuid)
    start = bindparam("start", type_=DateTime(timezone=True))
    end = bindparam("end", type_=DateTime(timezone=True))
    unavailable = exists().where(
        Unavailability.practitioner_id == practitioner_id,
        Unavailability.start < end,
        Unavailability.end > start,
    )
    new_slot = (
        insert(Slot)
        .from_select(
            ["id", "practitioner_id", "territory_id", "source", "start", "end", "modality",
             "visibility", "status", "crisis_id"],
            select(
                bindparam("id", type_=Uuid),
                practitioner_id,
                territory_id,
                literal("manual"),
                start,
                end,
                bindparam("modality", type_=String),
                bindparam("visibility", type_=String),
                literal("free"),
                bindparam("crisis_id", type_=Uuid),
            ).where(~unavailable),
        )
        .returning(Slot.id)
        .cte("new_slot")
    )  # fmt: skip
    offer = (
        insert(ActivityEvent)
        .from_select(
            ["type", "territory_id", "practitioner_id", "subject_id", "actor_key_id", "data", "at"],
            select(
                literal("slots.offered"),
                territory_id,
                practitioner_id,
                new_slot.c.id,
                bindparam("actor_key_id", type_=Uuid),
                cast(type_coerce(bindparam("offer_data"), Text), JSONB),
                bindparam("event_at", type_=DateTime(timezone=True)),
            ),
        )
        .returning(ActivityEvent.subject_id)
    )
    return DriverStatement(offer.add_cte(new_slot))


_ONE_OFF = _one_off_statement()


async def create_one_off_slot(
    session: AsyncSession,
    caller: Caller,
    practitioner_id: uuid.UUID,
    data: schemas.OneOffSlotIn,
    *,
    crisis_id: uuid.UUID | None = None,
) -> tuple[Slot, ZoneInfo]:
    """The slot (not in the session) and the zone. On the driver connection: the
    practitioner, the lock, and the slot with its offer event in a savepoint. `crisis_id`:
    crisis capacity (app.crisis checks the crisis runs in the practitioner's territory)."""
    publisher = await locked_publisher(session, caller, practitioner_id)
    if data.start <= now_utc():
        raise ValidationFailed.field(["body", "start"], "must be in the future")
    slot = Slot(
        id=uuid.uuid4(),
        practitioner_id=publisher.id,
        territory_id=publisher.territory_id,
        rule_id=None,
        source="manual",
        start=data.start,
        end=data.end,
        modality=data.modality,
        visibility=data.visibility,
        status="free",
        hold_expires_at=None,
        crisis_id=crisis_id,
    )
    offered = OfferedSlot(
        publisher.id, publisher.territory_id, slot.start, slot.end, slot.modality, slot.visibility
    )
    [event] = offer_events(
        "slots.offered",
        offer_days([offered], publisher.tz),
        actor_key_id=caller.key_id,
        subject_id=slot.id,
    )
    conn = await driver_connection(session)
    try:
        async with conn.transaction():  # a refused slot leaves the transaction usable
            row = await _ONE_OFF.fetchrow(
                session,
                id=slot.id,
                practitioner_id=publisher.id,
                territory_id=publisher.territory_id,
                start=data.start,
                end=data.end,
                modality=data.modality,
                visibility=data.visibility,
                crisis_id=crisis_id,
                actor_key_id=caller.key_id,
                offer_data=json.dumps(event["data"]),
                event_at=now_utc(),
            )
    except asyncpg.IntegrityConstraintViolationError as exc:
        existing = await overlapping_slots(session, publisher.id, [(data.start, data.end)])
        if existing:
            raise overlap_conflict(existing, publisher.tz) from exc
        raise Conflict(exc.args[0]) from exc  # the driver's message, as the ORM's error had it
    if row is None:
        raise Conflict("The practitioner is declared unavailable over this period")
    return slot, publisher.tz
