"""What a booking change tells: its activity event, its webhooks and the platform's
notification, in the change's transaction; never patient data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import CTE, bindparam
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from app.activity.service import record
from app.outbox.messages import enqueue_webhooks, webhook_messages
from app.scheduling.booking_models import Booking
from app.security import Caller

# The national SAS platform is told of a booking's changes by the SAS adapter
# (its appointments module), which the application wires here at start-up
# (app.main.create_app): the domain knows no adapter. Unwired, as when no platform is
# configured, nothing is told.
PlatformNotifier = Callable[[AsyncSession, Booking], Awaitable[bool]]
_platform_notifiers: list[PlatformNotifier] = []


def tell_platform_with(notifier: PlatformNotifier) -> None:
    """Wire the platform's notifier; wiring it again replaces it."""
    _platform_notifiers[:] = [notifier]


async def notify_platform(session: AsyncSession, booking: Booking) -> None:
    """Queue the platform's notification of this booking's new status, if one is wired."""
    for notifier in _platform_notifiers:
        await notifier(session, booking)


def lead_minutes(start: datetime, now: datetime) -> int:
    return int((start - now).total_seconds() // 60)


def webhook_payload(booking: Booking) -> dict[str, Any]:
    return {
        "booking": {
            "id": str(booking.id),
            "status": booking.status,
            "slot_id": str(booking.slot_id) if booking.slot_id else None,
            "practitioner_id": str(booking.practitioner_id),
            "practice_id": str(booking.practice_id),
            "start": booking.start.isoformat(),
            "end": booking.end.isoformat(),
            "modality": booking.modality,
            "overbooked": booking.overbooked,
            "sas_case_ref": booking.sas_case_ref,
        }
    }


def audience(booking: Booking) -> str:
    """`sas` for a booking by the SAS (a regulator, or the national platform's operator),
    `cpts` for the CPTS's own (by one of its practices or its coordinator): the indicators
    count only the first as SAS bookings."""
    if booking.regulator_id is not None or booking.operator_account_id is not None:
        return "sas"
    return "cpts"


def event_data(booking: Booking, **data: Any) -> dict[str, Any]:
    """The activity event's data: ids and codes, never patient data; a CPTS-internal
    booking's events say so (`"audience": "cpts"`), which keeps them out of the SAS's figures."""
    return {
        **({"audience": "cpts"} if audience(booking) == "cpts" else {}),
        "modality": booking.modality,
        "start": booking.start.isoformat(),
        "overbooked": booking.overbooked,
        **data,
    }


async def record_change(
    session: AsyncSession, caller: Caller | None, type_: str, booking: Booking, **data: Any
) -> None:
    """The activity event and the webhooks of a booking change, in its transaction."""
    await enqueue_webhooks(
        session,
        type_,
        webhook_payload(booking),
        practice_id=booking.practice_id,
        regulator_id=booking.regulator_id,
        territory_id=booking.territory_id,
        booker_practice_id=booking.booked_by_practice_id,
    )
    await notify_platform(session, booking)
    await record(
        session,
        type_,
        territory_id=booking.territory_id,
        practitioner_id=booking.practitioner_id,
        subject_id=booking.id,
        actor_key_id=caller.key_id if caller else None,
        **event_data(booking, **data),
    )


def webhooks_cte(event_type: Any) -> CTE:
    """The booking's webhook messages for `event_type`, from the bind parameters the booking's
    statements share (webhook_data, event_created, practice_id, regulator_id)."""
    return webhook_messages(
        event_type,
        bindparam("webhook_data"),
        bindparam("event_created"),
        bindparam("practice_id"),
        bindparam("regulator_id"),
        bindparam("territory_id"),
        bindparam("booked_by_practice_id", type_=Uuid),
    ).cte("webhooks")
