"""Booking by SAS regulators, and of the CPTS's own slots by its practices and coordinator;
practices and coordinators see, cancel and record outcomes."""

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from starlette.responses import Response

from app.activity.audit import log_shown
from app.api.commune_names import name_communes
from app.api.deps import CallerDep, SessionDep
from app.bounds import BoundedDatetime
from app.errors import ValidationFailed
from app.idempotency import IdempotencyKeyHeader, idempotent
from app.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from app.scheduling import (
    booking_cancellation,
    booking_creation,
    booking_outcomes,
    booking_views,
    overbooking,
)
from app.scheduling.booking_schemas import (
    BookingIn,
    BookingOut,
    CancelIn,
    ConfirmIn,
    OutcomeIn,
    OverbookIn,
)

router = APIRouter(prefix="/v1/bookings", tags=["bookings"])

BookingStatus = Literal["held", "booked", "cancelled", "expired", "honored", "no_show"]
_CONFLICTS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Slot or booking not found (or not visible to this key)"},
    409: {"description": "Slot not bookable (`type` ends with /slot-unavailable) or bad state"},
}


@router.post("", status_code=201, response_model=BookingOut, responses=_CONFLICTS)
async def create_booking(
    body: BookingIn,
    session: SessionDep,
    caller: CallerDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Book a slot for the patient on the phone, or hold it (`hold: true`) for HOLD_SECONDS
    while the patient's details are taken. A slot is given to one booking only, whatever the
    concurrency; when it is gone the answer is a 409 whose `type` ends with
    `/slot-unavailable`. Requires an `Idempotency-Key`. A regulator books `sas` and `public`
    slots; the territory's practices and coordinator book its `cpts` and `public` slots
    (CPTS-internal bookings, without `operator`), a `sas` slot being a 403 to them."""

    async def run() -> BookingOut:
        return await name_communes(
            session, booking_views.render(await booking_creation.book(session, caller, body))
        )

    return await idempotent(session, caller, idempotency_key, "POST /v1/bookings", body, run)


@router.post("/overbook", status_code=201, response_model=BookingOut, responses=_CONFLICTS)
async def overbook(
    body: OverbookIn,
    session: SessionDep,
    caller: CallerDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Book a "surnuméraire" consultation outside published slots, for practitioners who
    accept them, within their daily cap (counted in local days). Requires an
    `Idempotency-Key`."""

    async def run() -> BookingOut:
        return await name_communes(
            session, booking_views.render(await overbooking.overbook(session, caller, body))
        )

    return await idempotent(
        session, caller, idempotency_key, "POST /v1/bookings/overbook", body, run
    )


@router.get("", response_model=Page[BookingOut])
async def list_bookings(
    session: SessionDep,
    caller: CallerDep,
    status: BookingStatus | None = None,
    from_: Annotated[BoundedDatetime | None, Query(alias="from")] = None,
    to: BoundedDatetime | None = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[BookingOut]:
    """A regulator sees its own bookings, a practice those on its slots, a coordinator its
    territory's; ordered by consultation start."""
    if from_ is not None and to is not None and to <= from_:
        raise ValidationFailed.field(["query", "to"], "must be after from")
    views, next_cursor = await booking_views.list_bookings(
        session, caller, status=status, start=from_, end=to, cursor=cursor, limit=limit
    )
    items = await name_communes(session, [booking_views.render(v) for v in views])
    await log_shown(session, caller, "booking", items, "list")
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{booking_id}", response_model=BookingOut, responses=_CONFLICTS)
async def get_booking(booking_id: uuid.UUID, session: SessionDep, caller: CallerDep) -> BookingOut:
    booking = await name_communes(
        session, booking_views.render(await booking_views.get_booking(session, caller, booking_id))
    )
    await log_shown(session, caller, "booking", [booking], "read")
    return booking


@router.post("/{booking_id}/confirm", response_model=BookingOut, responses=_CONFLICTS)
async def confirm_booking(
    booking_id: uuid.UUID,
    session: SessionDep,
    caller: CallerDep,
    body: Annotated[ConfirmIn | None, Body()] = None,
) -> BookingOut:
    """Turn a live hold into a booking; an expired hold is a 409. No body is needed when the
    hold has the patient; a body may complete or correct it."""
    data = body or ConfirmIn()
    return await name_communes(
        session,
        booking_views.render(await booking_creation.confirm(session, caller, booking_id, data)),
    )


@router.post("/{booking_id}/cancel", response_model=BookingOut, responses=_CONFLICTS)
async def cancel_booking(
    booking_id: uuid.UUID, body: CancelIn, session: SessionDep, caller: CallerDep
) -> BookingOut:
    """Cancel; the slot is bookable again if it has not started."""
    return await name_communes(
        session,
        booking_views.render(await booking_cancellation.cancel(session, caller, booking_id, body)),
    )


@router.post("/{booking_id}/outcome", response_model=BookingOut, responses=_CONFLICTS)
async def record_outcome(
    booking_id: uuid.UUID, body: OutcomeIn, session: SessionDep, caller: CallerDep
) -> BookingOut:
    """Record whether the patient came (practice, coordinator), once the slot has started."""
    return await name_communes(
        session,
        booking_views.render(
            await booking_outcomes.record_outcome(session, caller, booking_id, body)
        ),
    )
