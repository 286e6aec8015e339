"""The messages a change leaves in the outbox, in its own transaction: one webhook message per
active endpoint that wants the event. Delivery, after commit, is sas_bridge.outbox's."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import Insert, String, Text, cast, func, insert, literal, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from app.clock import now_utc
from app.outbox.models import OutboxMessage, WebhookEndpoint


def webhook_messages(
    event_type: Any,
    payload: Any,
    created: Any,
    practice_id: Any,
    regulator_id: Any,
    territory_id: Any,
    booker_practice_id: Any = None,
) -> Insert:
    """INSERT … SELECT of one message per active endpoint of the practice or the SAS that
    wants this event (a SAS endpoint scoped to a territory: that territory's events only),
    and of the practice that booked it when it is a CPTS-internal booking (`booker_practice_id`).
    Arguments are values or bind parameters (`payload`: JSON text), so the booking path can
    compile it once into a larger statement."""
    event_type = type_coerce(event_type, String)
    wanted = (
        select(
            WebhookEndpoint.id.label("endpoint_id"),
            # A volatile function keeps the subquery from being flattened: one id per row,
            # the same in the column and in the body.
            func.gen_random_uuid().label("event_id"),
        )
        .where(
            WebhookEndpoint.active.is_(True),
            or_(
                WebhookEndpoint.practice_id == type_coerce(practice_id, Uuid),
                WebhookEndpoint.regulator_id == type_coerce(regulator_id, Uuid),
                WebhookEndpoint.practice_id == type_coerce(booker_practice_id, Uuid),
            ),
            or_(
                WebhookEndpoint.territory_id.is_(None),
                WebhookEndpoint.territory_id == type_coerce(territory_id, Uuid),
            ),
            or_(
                func.cardinality(WebhookEndpoint.event_types) == 0,
                WebhookEndpoint.event_types.any_() == event_type,
            ),
        )
        .subquery("wanted")
    )
    body = func.jsonb_build_object(
        "id",
        cast(wanted.c.event_id, Text),
        "type",
        event_type,
        "created",
        type_coerce(created, String),
        "data",
        cast(type_coerce(payload, Text), JSONB),
    )
    return insert(OutboxMessage).from_select(
        ["kind", "endpoint_id", "event_id", "event_type", "payload", "status", "attempts"],
        select(
            literal("webhook"),
            wanted.c.endpoint_id,
            wanted.c.event_id,
            event_type,
            body,
            literal("pending"),
            literal(0),
        ),
    )


async def enqueue_webhooks(
    session: AsyncSession,
    event_type: str,
    payload: dict[str, Any],
    *,
    practice_id: uuid.UUID | None,
    regulator_id: uuid.UUID | None,
    territory_id: uuid.UUID | None,
    booker_practice_id: uuid.UUID | None = None,
) -> int:
    """One message per active endpoint of the practice or the SAS that wants this event (and
    of the practice that booked a CPTS-internal booking)."""
    result = await session.execute(
        webhook_messages(
            event_type,
            json.dumps(payload),
            now_utc().isoformat(),
            practice_id,
            regulator_id,
            territory_id,
            booker_practice_id,
        )
    )
    return result.rowcount or 0  # type: ignore[attr-defined]
