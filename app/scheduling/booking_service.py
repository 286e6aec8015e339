"""Booking: hold, book, confirm, cancel, outcome, surnuméraire. Services flush, never commit.

No double booking, whatever the concurrency: the slot is taken by one conditional UPDATE on
the shared availability predicate (the row lock makes concurrent attempts re-check it), in the
same transaction as the booking row, and a partial unique index allows one occupying booking
per slot."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    CTE,
    DateTime,
    Select,
    String,
    and_,
    any_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from app.activity.service import event_insert, record
from app.config import get_settings
from app.db import DriverStatement
from app.directory.models import Practice, Practitioner, Territory
from app.errors import Conflict, Forbidden, NotFound, SlotUnavailable, ValidationFailed
from app.metrics import BOOKING_CONFLICTS
from app.patient_data import empty_patient_columns, patient_columns, patient_out
from app.sas_bridge.accounts import operator_account
from app.sas_bridge.appointments import notify as notify_platform
from app.sas_bridge.outbox import enqueue_webhooks, webhook_messages
from app.scheduling import booking_schemas as schemas
from app.scheduling.booking_models import Booking
from app.scheduling.models import AvailabilityRule, Slot
from app.scheduling.queries import (
    BOOKING_VISIBILITY,
    SEARCH_VISIBILITY,
    bookable,
    first_unavailability_over,
)
from app.scheduling.rules import local_instant
from app.scheduling.service import now_utc, zone
from app.security import ADMIN, COORDINATOR, PRACTICE, REGULATOR, Caller

READERS = (ADMIN, COORDINATOR, PRACTICE, REGULATOR)
BOOKERS = (REGULATOR, PRACTICE, COORDINATOR)
CPTS_MEMBERS = (PRACTICE, COORDINATOR)


@dataclass
class BookingView:
    """A booking with what its readers need, and whether this caller may see the patient."""

    booking: Booking
    practitioner: Practitioner | schemas.BookingPractitionerOut
    practice: Practice | schemas.BookingPracticeOut
    timezone: str
    show_patient: bool


def _lead_minutes(start: datetime, now: datetime) -> int:
    return int((start - now).total_seconds() // 60)


def _webhook_payload(booking: Booking) -> dict[str, Any]:
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


def _event_data(booking: Booking, **data: Any) -> dict[str, Any]:
    """The activity event's data: ids and codes, never patient data; a CPTS-internal
    booking's events say so (`"audience": "cpts"`), which keeps them out of the SAS's figures."""
    return {
        **({"audience": "cpts"} if audience(booking) == "cpts" else {}),
        "modality": booking.modality,
        "start": booking.start.isoformat(),
        "overbooked": booking.overbooked,
        **data,
    }


async def _event(
    session: AsyncSession, caller: Caller | None, type_: str, booking: Booking, **data: Any
) -> None:
    """The activity event and the webhooks of a booking change, in its transaction."""
    await enqueue_webhooks(
        session,
        type_,
        _webhook_payload(booking),
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
        **_event_data(booking, **data),
    )


# Reading ----------------------------------------------------------------------------------


def visible_bookings(caller: Caller) -> Select[Booking, Practitioner, Practice, str]:
    caller.require(*READERS)
    stmt = (
        select(Booking, Practitioner, Practice, Territory.timezone)
        .join(Practitioner, Practitioner.id == Booking.practitioner_id)
        .join(Practice, Practice.id == Booking.practice_id)
        .join(Territory, Territory.id == Booking.territory_id)
    )
    if caller.role == REGULATOR:
        # Its SAS's bookings, in the territories the key may act in now.
        return stmt.where(
            Booking.regulator_id == caller.regulator_id,
            Booking.territory_id.in_(caller.territory_ids),
        )
    if caller.role == PRACTICE:
        # Those on its slots, and the CPTS-internal ones it booked on its colleagues' slots.
        return stmt.where(
            or_(
                Booking.practice_id == caller.practice_id,
                Booking.booked_by_practice_id == caller.practice_id,
            )
        )
    if caller.role == COORDINATOR:
        return stmt.where(Booking.territory_id.in_(caller.territory_ids))
    return stmt


def _view(caller: Caller, row: Any) -> BookingView:
    booking, practitioner, practice, tz = row
    # Patient data: the booking SAS, the slot's practice and the coordinator; never others.
    return BookingView(booking, practitioner, practice, tz, caller.role != ADMIN)


async def get_booking(session: AsyncSession, caller: Caller, booking_id: uuid.UUID) -> BookingView:
    row = (
        await session.execute(visible_bookings(caller).where(Booking.id == booking_id))
    ).one_or_none()
    if row is None:
        raise NotFound("Booking not found")
    return _view(caller, row)


async def _lock_booking(
    session: AsyncSession, caller: Caller, booking_id: uuid.UUID
) -> BookingView:
    row = (
        await session.execute(
            visible_bookings(caller).where(Booking.id == booking_id).with_for_update(of=Booking)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("Booking not found")
    return _view(caller, row)


async def list_bookings(
    session: AsyncSession,
    caller: Caller,
    *,
    status: str | None,
    start: datetime | None,
    end: datetime | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[BookingView], str | None]:
    from app.pagination import decode_time_id_cursor, encode_cursor

    stmt = visible_bookings(caller)
    if status is not None:
        stmt = stmt.where(Booking.status == status)
    if start is not None:
        stmt = stmt.where(Booking.start >= start)
    if end is not None:
        stmt = stmt.where(Booking.start < end)
    if cursor:
        at, ident = decode_time_id_cursor(cursor)
        stmt = stmt.where((Booking.start > at) | and_(Booking.start == at, Booking.id > ident))
    rows = (await session.execute(stmt.order_by(Booking.start, Booking.id).limit(limit + 1))).all()
    views = [_view(caller, row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = views[-1].booking
        next_cursor = encode_cursor([last.start.isoformat(), last.id])
    return views, next_cursor


# Booking a slot ---------------------------------------------------------------------------


def _refuse_member_operator(caller: Caller, operator: schemas.Operator | None) -> None:
    """An operator is a regulator account of the national platform: a CPTS-internal booking,
    which the platform never sees, has none."""
    if operator is not None and caller.role in CPTS_MEMBERS:
        raise ValidationFailed.field(
            ["body", "operator"], "a CPTS-internal booking has no SAS platform operator"
        )


async def _operator(session: AsyncSession, operator: schemas.Operator | None) -> uuid.UUID | None:
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
_BOOKING_COLUMNS = [c.name for c in Booking.__table__.columns if c.name != "updated_at"]


def _webhooks_cte(event_type: Any) -> CTE:
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


def _record_statement() -> DriverStatement:
    new_booking = (
        insert(Booking)
        .values({name: bindparam(name) for name in _BOOKING_COLUMNS})
        .cte("new_booking")
    )
    webhooks = _webhooks_cte(bindparam("event_type"))
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
    operator_id = await _operator(session, data.operator)
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
            await _event(session, None, "hold.expired", stale)
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
        **{name: getattr(booking, name) for name in _BOOKING_COLUMNS},
        event_type=event_type,
        event_created=now.isoformat(),
        webhook_data=json.dumps(_webhook_payload(booking)),
        event_data=json.dumps(_event_data(booking, lead_minutes=_lead_minutes(booking.start, now))),
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
    operator_id = await _operator(session, data.operator)
    view = await _lock_booking(session, caller, booking_id)
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
    await _event(
        session, caller, "booking.booked", booking, lead_minutes=_lead_minutes(booking.start, now)
    )
    return view


# Cancelling, on the driver connection: one statement locks the booking (with what the
# answer shows), one writes the cancellation, the freed slot, the webhooks and the event.


def _cancel_lock_statement(*scope: Any) -> DriverStatement:
    """The booking, if `scope` lets the caller see it, locked, with its practitioner's and
    practice's public fields and its territory's zone."""
    return DriverStatement(
        select(
            *(Booking.__table__.c[name] for name in _BOOKING_COLUMNS),
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
    webhooks = _webhooks_cte("booking.cancelled")
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
    booking, now = Booking(**{name: row[name] for name in _BOOKING_COLUMNS}), now_utc()
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
        webhook_data=json.dumps(_webhook_payload(booking)),
        event_created=now.isoformat(),
        practice_id=booking.practice_id,
        regulator_id=booking.regulator_id,
        territory_id=booking.territory_id,
        booked_by_practice_id=booking.booked_by_practice_id,
        practitioner_id=booking.practitioner_id,
        actor_key_id=caller.key_id,
        event_data=json.dumps(_event_data(booking, was=was, by_role=caller.role)),
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


async def record_outcome(
    session: AsyncSession, caller: Caller, booking_id: uuid.UUID, data: schemas.OutcomeIn
) -> BookingView:
    caller.require(PRACTICE, COORDINATOR)
    view = await _lock_booking(session, caller, booking_id)
    booking, now = view.booking, now_utc()
    if caller.role == PRACTICE and booking.practice_id != caller.practice_id:
        raise Forbidden("The outcome is recorded by the practice that received the patient")
    if booking.status != "booked":
        raise Conflict(
            f"An outcome is recorded on a booked consultation, not a {booking.status} one"
        )
    if booking.start > now:
        raise Conflict("The outcome can only be recorded once the consultation has started")
    booking.status, booking.outcome_at = data.outcome, now
    await session.flush()
    await _event(session, caller, f"booking.{data.outcome}", booking)
    return view


# Surnuméraire -----------------------------------------------------------------------------

# Without rules nor a list of its own, a GP who accepts surnuméraires sees them at the practice.
DEFAULT_OVERBOOKING_MODALITIES = ("cabinet",)


async def overbooking_modalities(session: AsyncSession, practitioner: Practitioner) -> list[str]:
    """The modalities the practitioner accepts as surnuméraire: its own list, else those of
    its availability rules, else the practice (cabinet)."""
    if practitioner.overbooking_modalities is not None:
        return sorted(practitioner.overbooking_modalities)
    ruled = await session.scalars(
        select(AvailabilityRule.modality)
        .where(AvailabilityRule.practitioner_id == practitioner.id)
        .distinct()
    )
    return sorted(ruled.all()) or list(DEFAULT_OVERBOOKING_MODALITIES)


def within_hours(
    start: datetime, end: datetime, tz: ZoneInfo, hours_start: time, hours_end: time
) -> bool:
    """Whether [start, end) lies in the local hours of one day (an end at or before the start
    is the next day), DST-correct: the hours are wall-clock times of that day."""
    overnight = hours_end <= hours_start
    first = start.astimezone(tz).date()
    for day in (first - timedelta(days=1), first):
        opens = local_instant(day, hours_start, tz)
        closes = local_instant(day + timedelta(days=1) if overnight else day, hours_end, tz)
        if opens <= start and end <= closes:
            return True
    return False


async def refuse_overbooking(
    session: AsyncSession,
    practitioner: Practitioner,
    tz: ZoneInfo,
    window_hours: int,
    data: schemas.OverbookIn,
    *,
    now: datetime,
) -> None:
    """The guards of a surnuméraire, each refusal a problem with a `refusal` code (and what
    a page needs to say it): beyond the territory's SNP window (422), for a modality the GP
    does not accept, outside its surnuméraire hours, inside one of its absences (409)."""
    assert data.end is not None
    if data.start > now + timedelta(hours=window_hours):
        msg = f"beyond the territory's SNP window of {window_hours} hours"
        raise ValidationFailed(
            f"body.start: {msg}",
            errors=[{"loc": ["body", "start"], "msg": msg}],
            refusal="snp_window",
            window_hours=window_hours,
        )
    accepted = await overbooking_modalities(session, practitioner)
    if data.modality not in accepted:
        raise Conflict(
            f"This practitioner does not accept a {data.modality} surnuméraire "
            f"(accepted: {', '.join(accepted)})",
            refusal="modality",
            modality=data.modality,
            accepted=accepted,
        )
    opens, closes = practitioner.overbooking_start_time, practitioner.overbooking_end_time
    if not within_hours(data.start, data.end, tz, opens, closes):
        raise Conflict(
            f"Outside the practitioner's surnuméraire hours ({opens:%H:%M}-{closes:%H:%M} local)",
            refusal="hours",
            hours_start=f"{opens:%H:%M}",
            hours_end=f"{closes:%H:%M}",
        )
    absence = await first_unavailability_over(session, practitioner.id, data.start, data.end)
    if absence is not None:
        raise Conflict(
            "The practitioner is declared unavailable over this period",
            refusal="unavailable",
            unavailable_from=absence.start.astimezone(tz).isoformat(),
            unavailable_until=absence.end.astimezone(tz).isoformat(),
        )


async def overbook(session: AsyncSession, caller: Caller, data: schemas.OverbookIn) -> BookingView:
    """A consultation beyond published slots, within the practitioner's daily cap (local
    day). The practitioner row is locked so concurrent requests count one after the other."""
    caller.require(REGULATOR)
    operator_id = await _operator(session, data.operator)
    now = now_utc()
    row = (
        await session.execute(
            select(Practitioner, Practice, Territory.timezone, Territory.snp_window_hours)
            .join(Practice, Practice.id == Practitioner.practice_id)
            .join(Territory, Territory.id == Practitioner.territory_id)
            .where(
                Practitioner.id == data.practitioner_id,
                Practitioner.territory_id.in_(caller.territory_ids),
            )
            .with_for_update(of=Practitioner)
        )
    ).one_or_none()
    if row is None:
        raise ValidationFailed.field(["body", "practitioner_id"], "unknown practitioner")
    practitioner, practice, tz, window_hours = row
    assert data.end is not None
    if data.start <= now:
        raise ValidationFailed.field(["body", "start"], "must be in the future")
    if not practitioner.accepts_overbooking:
        raise Conflict(
            "This practitioner does not accept surnuméraire patients", refusal="not_accepted"
        )
    await refuse_overbooking(session, practitioner, ZoneInfo(tz), window_hours, data, now=now)
    local_day = data.start.astimezone(ZoneInfo(tz)).date()
    day_start = datetime.combine(local_day, time(), ZoneInfo(tz))
    day_end = datetime.combine(local_day + timedelta(days=1), time(), ZoneInfo(tz))
    used = await session.scalar(
        select(func.count())
        .select_from(Booking)
        .where(
            Booking.practitioner_id == practitioner.id,
            Booking.overbooked.is_(True),
            Booking.status != "cancelled",
            Booking.start >= day_start,
            Booking.start < day_end,
        )
    )
    if (used or 0) >= practitioner.overbooking_daily_cap:
        raise Conflict(
            f"The daily surnuméraire cap ({practitioner.overbooking_daily_cap}) is reached "
            f"for {local_day.isoformat()}",
            refusal="daily_cap",
            cap=practitioner.overbooking_daily_cap,
            day=local_day.isoformat(),
        )
    booking = Booking(
        slot_id=None,
        practitioner_id=practitioner.id,
        practice_id=practice.id,
        territory_id=practitioner.territory_id,
        regulator_id=caller.regulator_id,
        created_by_key_id=caller.key_id,
        status="booked",
        start=data.start,
        end=data.end,
        modality=data.modality,
        overbooked=True,
        operator_account_id=operator_id,
        created_at=now,
        booked_at=now,
        sas_case_ref=data.sas_case_ref,
        reason=data.reason,
        visit_address=data.visit_address,
        **patient_columns(data.patient),
    )
    session.add(booking)
    await session.flush()
    await _event(
        session, caller, "booking.overbooked", booking, lead_minutes=_lead_minutes(data.start, now)
    )
    return BookingView(booking, practitioner, practice, tz, True)


# Hold expiry job ------------------------------------------------------------------------


async def expire_holds(session: AsyncSession, *, now: datetime | None = None) -> dict[str, int]:
    """Release holds that have expired. Search and booking never wait for this: an expired
    hold is bookable the moment it expires; this only tidies statuses. Safe to run twice."""
    now = now or now_utc()
    expired = (
        await session.scalars(
            update(Booking)
            .where(Booking.status == "held", Booking.hold_expires_at <= now)
            .values(status="expired", hold_expires_at=None)
            .returning(Booking)
            .execution_options(synchronize_session=False)
        )
    ).all()
    slot_ids = [b.slot_id for b in expired if b.slot_id is not None]
    if slot_ids:
        await session.execute(
            update(Slot)
            .where(Slot.id.in_(slot_ids), Slot.status == "held", Slot.hold_expires_at <= now)
            .values(status="free", hold_expires_at=None)
            .execution_options(synchronize_session=False)
        )
    for booking in expired:
        await _event(session, None, "hold.expired", booking)
    return {"holds_expired": len(expired)}


def render(view: BookingView) -> schemas.BookingOut:
    """The response shape, timestamps in the territory's local offset."""
    tz = zone(view.timezone)
    b = view.booking

    def loc(value: datetime | None) -> datetime | None:
        return value.astimezone(tz) if value is not None else None

    patient = patient_out(b, visible=view.show_patient)
    return schemas.BookingOut(
        id=b.id,
        status=b.status,
        slot=(
            schemas.BookingSlotOut(
                id=b.slot_id,
                start=b.start.astimezone(tz),
                end=b.end.astimezone(tz),
                modality=b.modality,
            )
            if b.slot_id is not None
            else None
        ),
        start=b.start.astimezone(tz),
        end=b.end.astimezone(tz),
        modality=b.modality,
        overbooked=b.overbooked,
        practitioner=schemas.BookingPractitionerOut.model_validate(view.practitioner),
        practice=schemas.BookingPracticeOut.model_validate(view.practice),
        territory_id=b.territory_id,
        regulator_id=b.regulator_id,
        patient=patient,
        sas_case_ref=b.sas_case_ref,
        reason=b.reason,
        visit_address=b.visit_address if patient is not None else None,
        hold_expires_at=loc(b.hold_expires_at),
        created_at=b.created_at.astimezone(tz),
        booked_at=loc(b.booked_at),
        cancelled_at=loc(b.cancelled_at),
        cancel_reason=b.cancel_reason,
        outcome_at=loc(b.outcome_at),
    )
