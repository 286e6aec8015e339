"""Cancelling a booking, on the driver connection: one statement locks the booking (with what
the answer shows), one writes the cancellation, the freed slot, the webhooks and the event."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import DateTime, String, any_, bindparam, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from app.activity.service import event_insert
from app.clock import now_utc
from app.db import DriverStatement
from app.directory.models import Practice, Practitioner, Territory
from app.errors import Conflict, NotFound
from app.scheduling import booking_schemas as schemas
from app.scheduling.booking_events import event_data, notify_platform, webhook_payload, webhooks_cte
from app.scheduling.booking_models import BOOKING_COLUMNS, Booking
from app.scheduling.booking_views import BookingView
from app.scheduling.models import Slot
from app.security import ADMIN, COORDINATOR, PRACTICE, REGULATOR, Caller

# Cancelling, on the driver connection: one statement locks the booking (with what the
# answer shows), one writes the cancellation, the freed slot, the webhooks and the event.


def _cancel_lock_statement(*scope: Any) -> DriverStatement:
    """The booking, if `scope` lets the caller see it, locked, with its practitioner's and
    practice's public fields and its territory's zone."""
    return DriverStatement(
        select(
            *(Booking.__table__.c[name] for name in BOOKING_COLUMNS),
            Practitioner.family_name.label("practitioner_family_name"),
            Practitioner.given_name.label("practitioner_given_name"),
            Practitioner.rpps.label("practitioner_rpps"),
            Practice.name.label("practice_name"),
            Practice.address.label("practice_address"),
            Practice.postal_code.label("practice_postal_code"),
            Practice.city.label("practice_city"),
            Practice.phone.label("practice_phone"),
            Territory.timezone,
        )
        .join(Practitioner, Practitioner.id == Booking.practitioner_id)
        .join(Practice, Practice.id == Booking.practice_id)
        .join(Territory, Territory.id == Booking.territory_id)
        .where(Booking.id == bindparam("booking_id", type_=Uuid), *scope)
        .with_for_update(of=Booking)
    )


def _cancel_statement() -> DriverStatement:
    now = bindparam("now", type_=DateTime(timezone=True))
    cancelled = (
        update(Booking)
        .where(Booking.id == bindparam("booking_id", type_=Uuid))
        .values(
            status="cancelled",
            hold_expires_at=None,
            cancelled_at=now,
            cancel_reason=bindparam("reason", type_=String),
        )
        .returning(Booking.id)
        .cte("cancelled")
    )
    # The slot is bookable again if it has not started; a past slot stays as it was.
    freed = (
        update(Slot)
        .where(Slot.id == bindparam("slot_id", type_=Uuid), Slot.start > now)
        .values(status="free", hold_expires_at=None)
        .returning(Slot.id)
        .cte("freed")
    )
    webhooks = webhooks_cte("booking.cancelled")
    event = event_insert(
        type="booking.cancelled",
        territory_id=bindparam("territory_id", type_=Uuid),
        practitioner_id=bindparam("practitioner_id", type_=Uuid),
        subject_id=bindparam("booking_id", type_=Uuid),
        actor_key_id=bindparam("actor_key_id", type_=Uuid),
        data=bindparam("event_data"),
    )
    return DriverStatement(event.add_cte(cancelled, freed, webhooks))


# By the caller's role, as `visible_bookings` (IS NOT DISTINCT FROM: `==` with None is IS NULL).
_CANCEL_LOCK = {
    REGULATOR: _cancel_lock_statement(
        Booking.regulator_id.is_not_distinct_from(bindparam("regulator_id", type_=Uuid)),
        Booking.territory_id == any_(bindparam("territory_ids", type_=ARRAY(Uuid))),
    ),
    PRACTICE: _cancel_lock_statement(
        or_(
            Booking.practice_id.is_not_distinct_from(bindparam("practice_id", type_=Uuid)),
            Booking.booked_by_practice_id.is_not_distinct_from(
                bindparam("practice_id", type_=Uuid)
            ),
        )
    ),
    COORDINATOR: _cancel_lock_statement(
        Booking.territory_id == any_(bindparam("territory_ids", type_=ARRAY(Uuid)))
    ),
}


_CANCEL = _cancel_statement()


async def cancel(
    session: AsyncSession, caller: Caller, booking_id: uuid.UUID, data: schemas.CancelIn
) -> BookingView:
    """Two statements on the driver connection (lock, cancel), whatever the number of
    webhooks; the platform's notification, when there is one, as on booking."""
    caller.require(REGULATOR, PRACTICE, COORDINATOR)
    row = await _CANCEL_LOCK[caller.role].fetchrow(
        session,
        booking_id=booking_id,
        regulator_id=caller.regulator_id,
        practice_id=caller.practice_id,
        territory_ids=list(caller.territory_ids),
    )
    if row is None:
        raise NotFound("Booking not found")
    booking, now = Booking(**{name: row[name] for name in BOOKING_COLUMNS}), now_utc()
    if booking.status not in ("held", "booked"):
        raise Conflict(f"A {booking.status} booking cannot be cancelled")
    was = booking.status
    booking.status, booking.hold_expires_at = "cancelled", None
    booking.cancelled_at, booking.cancel_reason = now, data.reason
    await _CANCEL.execute(
        session,
        booking_id=booking.id,
        now=now,
        reason=data.reason,
        slot_id=booking.slot_id,
        webhook_data=json.dumps(webhook_payload(booking)),
        event_created=now.isoformat(),
        practice_id=booking.practice_id,
        regulator_id=booking.regulator_id,
        territory_id=booking.territory_id,
        booked_by_practice_id=booking.booked_by_practice_id,
        practitioner_id=booking.practitioner_id,
        actor_key_id=caller.key_id,
        event_data=json.dumps(event_data(booking, was=was, by_role=caller.role)),
        event_at=now,
    )
    await notify_platform(session, booking)
    practitioner = schemas.BookingPractitionerOut(
        id=booking.practitioner_id,
        family_name=row["practitioner_family_name"],
        given_name=row["practitioner_given_name"],
        rpps=row["practitioner_rpps"],
    )
    practice = schemas.BookingPracticeOut(
        id=booking.practice_id,
        name=row["practice_name"],
        address=row["practice_address"],
        postal_code=row["practice_postal_code"],
        city=row["practice_city"],
        phone=row["practice_phone"],
    )
    return BookingView(booking, practitioner, practice, row["timezone"], caller.role != ADMIN)
