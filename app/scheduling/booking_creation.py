"""Booking a slot: hold or book it, then confirm a hold. Services flush, never commit.

No double booking, whatever the concurrency: the slot is taken by one conditional UPDATE on
the shared availability predicate (the row lock makes concurrent attempts re-check it), in the
same transaction as the booking row, and a partial unique index allows one occupying booking
per slot."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

from sqlalchemy import DateTime, String, any_, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from app.activity.service import event_insert
from app.clock import now_utc
from app.config import get_settings
from app.db import DriverStatement
from app.directory.models import Practice, Practitioner, Territory
from app.directory.regulator_accounts import operator_account
from app.errors import Conflict, Forbidden, NotFound, SlotUnavailable, ValidationFailed
from app.metrics import BOOKING_CONFLICTS
from app.patient_data import empty_patient_columns, patient_columns
from app.scheduling import booking_schemas as schemas
from app.scheduling.booking_events import (
    audience,
    event_data,
    lead_minutes,
    notify_platform,
    record_change,
    webhook_payload,
    webhooks_cte,
)
from app.scheduling.booking_models import BOOKING_COLUMNS, Booking
from app.scheduling.booking_views import BookingView, lock_booking
from app.scheduling.models import Slot
from app.scheduling.queries import BOOKING_VISIBILITY, SEARCH_VISIBILITY, bookable
from app.security import COORDINATOR, PRACTICE, REGULATOR, Caller

BOOKERS = (REGULATOR, PRACTICE, COORDINATOR)
CPTS_MEMBERS = (PRACTICE, COORDINATOR)


def _refuse_member_operator(caller: Caller, operator: schemas.Operator | None) -> None:
    """An operator is a regulator account of the national platform: a CPTS-internal booking,
    which the platform never sees, has none."""
    if operator is not None and caller.role in CPTS_MEMBERS:
        raise ValidationFailed.field(
            ["body", "operator"], "a CPTS-internal booking has no SAS platform operator"
        )


async def resolve_operator(
    session: AsyncSession, operator: schemas.Operator | None
) -> uuid.UUID | None:
    """The id of the directory's regulator account operating the booking, if one is named."""
    if operator is None:
        return None
    return (await operator_account(session, operator.system, operator.value)).id


def _take_statement() -> DriverStatement:
    """Take a slot, if bookable, with one conditional UPDATE; in the same statement, close a
    hold on it that expired before any job did, and read what the answer shows."""
    now = bindparam("now", type_=DateTime(timezone=True))
    taken = (
        update(Slot)
        .where(
            Slot.id == bindparam("slot_id", type_=Uuid),
            bookable(now),
            # The visibilities the caller's role books (queries.BOOKING_VISIBILITY).
            Slot.visibility == any_(bindparam("visibilities", type_=ARRAY(String))),
            Slot.territory_id == any_(bindparam("territory_ids", type_=ARRAY(Uuid))),
        )
        .values(
            status=bindparam("status", type_=String),
            hold_expires_at=bindparam("hold_until", type_=DateTime(timezone=True)),
        )
        .returning(
            Slot.id, Slot.practitioner_id, Slot.territory_id, Slot.start, Slot.end, Slot.modality
        )
        .cte("taken")
    )
    expired = (
        update(Booking)
        .where(
            Booking.slot_id == select(taken.c.id).scalar_subquery(),
            Booking.status == "held",
            Booking.hold_expires_at <= now,
        )
        .values(status="expired", hold_expires_at=None)
        .returning(Booking.id)
        .cte("expired")
    )
    return DriverStatement(
        select(
            taken,
            Practitioner.family_name,
            Practitioner.given_name,
            Practitioner.rpps,
            Practice.id.label("practice_id"),
            Practice.name.label("practice_name"),
            Practice.address,
            Practice.postal_code,
            Practice.city,
            Practice.phone,
            Territory.timezone,
            func.array(select(expired.c.id).scalar_subquery()).label("expired_ids"),
        )
        .join(Practitioner, Practitioner.id == taken.c.practitioner_id)
        .join(Practice, Practice.id == Practitioner.practice_id)
        .join(Territory, Territory.id == taken.c.territory_id)
    )


# Written by the booking, in one statement: the booking row, its activity event and its
# webhook messages.
def _record_statement() -> DriverStatement:
    new_booking = (
        insert(Booking)
        .values({name: bindparam(name) for name in BOOKING_COLUMNS})
        .cte("new_booking")
    )
    webhooks = webhooks_cte(bindparam("event_type"))
    event = event_insert(
        type=bindparam("event_type"),
        territory_id=bindparam("territory_id"),
        practitioner_id=bindparam("practitioner_id"),
        subject_id=bindparam("id"),
        actor_key_id=bindparam("created_by_key_id"),
        data=bindparam("event_data"),
    )
    return DriverStatement(event.add_cte(new_booking, webhooks))


_TAKE = _take_statement()
_RECORD = _record_statement()


# Why a slot could not be taken (the 409's detail): the hot path of a race for one slot.
_SLOT_STATE = DriverStatement(
    select(Slot.territory_id, Slot.visibility, Slot.start, Slot.status).where(
        Slot.id == bindparam("slot_id", type_=Uuid)
    )
)


async def book(session: AsyncSession, caller: Caller, data: schemas.BookingIn) -> BookingView:
    """The hot path of a SAS call: two statements on the driver connection (take, record),
    whatever the number of webhooks. A regulator books the SAS's slots; the CPTS's practices
    and coordinator book its own (`cpts`) and `public` slots, as CPTS-internal bookings."""
    caller.require(*BOOKERS)
    _refuse_member_operator(caller, data.operator)
    operator_id = await resolve_operator(session, data.operator)
    now = now_utc()
    hold_until = now + timedelta(seconds=get_settings().hold_seconds) if data.hold else None
    status = "held" if data.hold else "booked"
    taken = await _TAKE.fetchrow(
        session,
        slot_id=data.slot_id,
        now=now,
        territory_ids=list(caller.territory_ids),
        visibilities=list(BOOKING_VISIBILITY[caller.role]),
        status=status,
        hold_until=hold_until,
    )
    if taken is None:
        await _explain_unbookable(session, caller, data.slot_id, now)
    assert taken is not None
    if taken["expired_ids"]:
        expired = await session.scalars(select(Booking).where(Booking.id.in_(taken["expired_ids"])))
        for stale in expired:
            await record_change(session, None, "hold.expired", stale)
    booking = Booking(
        id=uuid.uuid4(),
        slot_id=taken["id"],
        practitioner_id=taken["practitioner_id"],
        practice_id=taken["practice_id"],
        territory_id=taken["territory_id"],
        regulator_id=caller.regulator_id if caller.role == REGULATOR else None,
        booked_by_practice_id=caller.practice_id if caller.role == PRACTICE else None,
        created_by_key_id=caller.key_id,
        operator_account_id=operator_id,
        status=status,
        start=taken["start"],
        end=taken["end"],
        modality=taken["modality"],
        overbooked=False,
        hold_expires_at=hold_until,
        created_at=now,
        booked_at=None if data.hold else now,
        cancelled_at=None,
        cancel_reason=None,
        outcome_at=None,
        sas_case_ref=data.sas_case_ref,
        reason=data.reason,
        visit_address=data.visit_address,
        **(patient_columns(data.patient) if data.patient else empty_patient_columns()),
    )
    event_type = "booking.held" if data.hold else "booking.booked"
    await _RECORD.execute(
        session,
        **{name: getattr(booking, name) for name in BOOKING_COLUMNS},
        event_type=event_type,
        event_created=now.isoformat(),
        webhook_data=json.dumps(webhook_payload(booking)),
        event_data=json.dumps(event_data(booking, lead_minutes=lead_minutes(booking.start, now))),
        event_at=now,
    )
    await notify_platform(session, booking)
    practitioner = schemas.BookingPractitionerOut(
        id=taken["practitioner_id"],
        family_name=taken["family_name"],
        given_name=taken["given_name"],
        rpps=taken["rpps"],
    )
    practice = schemas.BookingPracticeOut(
        id=taken["practice_id"],
        name=taken["practice_name"],
        address=taken["address"],
        postal_code=taken["postal_code"],
        city=taken["city"],
        phone=taken["phone"],
    )
    return BookingView(booking, practitioner, practice, taken["timezone"], True)


async def _explain_unbookable(
    session: AsyncSession, caller: Caller, slot_id: uuid.UUID, now: datetime
) -> None:
    """404 for a slot the caller cannot see (a `cpts` slot to a regulator), 403 for one it
    sees but does not book (a `sas` slot to the CPTS's members), else a 409 saying why it
    cannot be booked."""
    slot = await _SLOT_STATE.fetchrow(session, slot_id=slot_id)
    if (
        slot is None
        or slot["territory_id"] not in caller.territory_ids
        or slot["visibility"] not in SEARCH_VISIBILITY[caller.role]
    ):
        raise NotFound("Slot not found")
    if slot["visibility"] not in BOOKING_VISIBILITY[caller.role]:
        raise Forbidden("This slot is set aside for the SAS: only its regulators book it")
    if slot["start"] <= now:
        why = "it has already started"
    elif slot["status"] == "held":
        why = "another regulator is holding it"
    elif slot["status"] == "booked":
        why = "it has just been booked"
    else:
        why = "the practitioner is unavailable"
    BOOKING_CONFLICTS.inc()
    raise SlotUnavailable(f"This slot cannot be booked: {why}", slot_id=str(slot_id))


async def confirm(
    session: AsyncSession, caller: Caller, booking_id: uuid.UUID, data: schemas.ConfirmIn
) -> BookingView:
    caller.require(*BOOKERS)
    _refuse_member_operator(caller, data.operator)
    operator_id = await resolve_operator(session, data.operator)
    view = await lock_booking(session, caller, booking_id)
    booking, now = view.booking, now_utc()
    if caller.role in CPTS_MEMBERS and audience(booking) == "sas":
        raise Forbidden("A SAS hold is confirmed by the SAS that made it")
    if operator_id is not None:
        booking.operator_account_id = operator_id
    if booking.status != "held":
        raise Conflict(f"Only a held booking can be confirmed; this one is {booking.status}")
    assert booking.hold_expires_at is not None
    if booking.hold_expires_at <= now:
        raise SlotUnavailable("The hold has expired; search again and book another slot")
    if data.patient is None and booking.patient_family_name is None:
        raise ValidationFailed.field(
            ["body", "patient"], "required: the hold was made without the patient"
        )
    await session.execute(
        update(Slot)
        .where(Slot.id == booking.slot_id)
        .values(status="booked", hold_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    booking.status, booking.hold_expires_at, booking.booked_at = "booked", None, now
    booking.sas_case_ref = data.sas_case_ref or booking.sas_case_ref
    booking.reason = data.reason or booking.reason
    booking.visit_address = data.visit_address or booking.visit_address
    if data.patient is not None:  # completes or corrects the patient given with the hold
        for name, value in patient_columns(data.patient).items():
            setattr(booking, name, value)
    await session.flush()
    await record_change(
        session, caller, "booking.booked", booking, lead_minutes=lead_minutes(booking.start, now)
    )
    return view
