"""Bookings, for everyone who may read them (/rendez-vous): the regulator's own, the
practice's, the territory's for a coordinator, as the API's list shows them. Each booking
carries what is needed to receive the patient; cancel and honored / no-show are the API's
own transitions. Every booking shown with its patient is written to the access log."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.activity.audit import log_shown
from app.api.deps import SessionDep
from app.bounds import BoundedDate
from app.clock import now_utc
from app.directory.models import Territory
from app.errors import Conflict
from app.scheduling import booking_cancellation, booking_outcomes, booking_views
from app.scheduling.booking_schemas import BookingOut, CancelIn, OutcomeIn
from app.security import ADMIN, COORDINATOR, PRACTICE, REGULATOR, Caller
from app.web.auth import FormDep, UserDep, WebUser, done, require_role, safe_path, show
from app.web.forms import local_day_start, parse

router = APIRouter(prefix="/rendez-vous", include_in_schema=False)
READERS = (ADMIN, COORDINATOR, PRACTICE, REGULATOR)
CANCELLERS = (REGULATOR, PRACTICE, COORDINATOR)
RECORDERS = (PRACTICE, COORDINATOR)


async def caller_zone(session: AsyncSession, caller: Caller) -> ZoneInfo:
    """The zone a person's dates are typed in: their territory's (the first one for a SAS
    serving several)."""
    territory_id = caller.territory_id or next(iter(sorted(caller.territory_ids)), None)
    name = None
    if territory_id is not None:
        name = await session.scalar(select(Territory.timezone).where(Territory.id == territory_id))
    return ZoneInfo(name or "Europe/Paris")


def actions(user: WebUser, booking: BookingOut, now: datetime) -> dict[str, bool]:
    """What this person may do to this booking: the services' own role and state rules,
    so that no button leads to a refusal."""
    return {
        "cancel": user.role in CANCELLERS and booking.status in ("held", "booked"),
        "outcome": user.role in RECORDERS and booking.status == "booked" and booking.start <= now,
    }


STATUS_FILTERS = ("booked", "held", "cancelled", "honored", "no_show", "expired")


@router.get("")
async def bookings(
    request: Request,
    session: SessionDep,
    user: UserDep,
    du: BoundedDate | None = None,
    jours: int = 7,
    statut: str = "",
) -> Response:
    require_role(user, *READERS)
    tz = await caller_zone(session, user.caller)
    first = du or now_utc().astimezone(tz).date() - timedelta(days=1)
    jours = min(max(jours, 1), 31)
    views, _ = await booking_views.list_bookings(
        session,
        user.caller,
        status=statut if statut in STATUS_FILTERS else None,
        start=local_day_start(first, tz),
        end=local_day_start(first + timedelta(days=jours), tz),
        cursor=None,
        limit=500,
    )
    items = [booking_views.render(v) for v in views]
    await log_shown(session, user.caller, "booking", items, "list")
    now = now_utc()
    return show(
        request,
        user,
        "bookings.html",
        items=[(b, actions(user, b, now)) for b in items],
        first=first,
        days=jours,
        status_filter=statut,
        statuses=STATUS_FILTERS,
        back=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
    )


async def _detail(
    request: Request,
    session: AsyncSession,
    user: WebUser,
    booking_id: uuid.UUID,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    booking = booking_views.render(
        await booking_views.get_booking(session, user.caller, booking_id)
    )
    await log_shown(session, user.caller, "booking", [booking], "read")
    errors = errors or {}
    return show(
        request,
        user,
        "booking.html",
        status,
        b=booking,
        can=actions(user, booking, now_utc()),
        errors=errors,
        values=values or {},
        first_error=next(iter(errors), None),
    )


@router.get("/{booking_id}")
async def booking(
    request: Request, session: SessionDep, user: UserDep, booking_id: uuid.UUID
) -> Response:
    require_role(user, *READERS)
    return await _detail(request, session, user, booking_id)


@router.post("/{booking_id}/annuler")
async def cancel(
    request: Request, session: SessionDep, user: UserDep, form: FormDep, booking_id: uuid.UUID
) -> Response:
    require_role(user, *CANCELLERS)
    body, errors = parse(CancelIn, {"reason": form.get("reason")})
    if body is None:
        return await _detail(
            request, session, user, booking_id, errors=errors, values=form.values(), status=422
        )
    try:
        await booking_cancellation.cancel(session, user.caller, booking_id, body)
    except Conflict:
        await session.rollback()
        return await _detail(
            request,
            session,
            user,
            booking_id,
            errors={"_form": "Ce rendez-vous ne peut plus être annulé."},
            status=409,
        )
    return done(request, f"/rendez-vous/{booking_id}", "Rendez-vous annulé.")


@router.post("/{booking_id}/issue")
async def outcome(
    request: Request, session: SessionDep, user: UserDep, form: FormDep, booking_id: uuid.UUID
) -> Response:
    """Honored or no-show, once the consultation has started."""
    require_role(user, *RECORDERS)
    back = safe_path(form.get("retour"), f"/rendez-vous/{booking_id}")
    body, _ = parse(OutcomeIn, {"outcome": form.get("outcome")})
    if body is None:
        return done(request, back, "Choisissez « honoré » ou « patient absent ».")
    try:
        await booking_outcomes.record_outcome(session, user.caller, booking_id, body)
    except Conflict:
        await session.rollback()
        return done(
            request, back, "La venue ne peut être notée qu'après l'heure du rendez-vous réservé."
        )
    said = "honoré" if body.outcome == "honored" else "patient absent"
    return done(request, back, f"Rendez-vous noté : {said}.")
