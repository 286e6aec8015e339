"""The booking page of one practitioner (/agenda/{practitioner_id}), the URL the national SAS
platform puts in every Slot's `comment`, for the regulator accounts the platform created.

- Not signed in: to /agenda/connexion (app.web.agenda_sign_in), then back to the page asked
  for, query (`origin=…`) included.
- The page: the practitioner's bookable slots over the next 48 hours (the API's search, so
  the one availability predicate), in local time; choose one, type the patient, book. The
  booking goes through the API's booking service as the territory's SAS, with the signed-in
  account (app.web.agenda_account) as `operator`, so the platform is sent the Appointment.
  Every form carries a CSRF token."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.activity.audit import log_access
from app.api.deps import SessionDep
from app.config import get_settings
from app.directory.models import Practice, Practitioner, Territory
from app.errors import Forbidden, NotFound, SlotUnavailable, ValidationFailed
from app.idempotency import idempotent
from app.sas_bridge import account_sign_in as sign_in
from app.scheduling import booking_creation, booking_views
from app.scheduling import search as slot_search
from app.scheduling.booking_schemas import BookingOut
from app.scheduling.models import Slot
from app.security import Caller
from app.web import agenda_sign_in
from app.web.agenda_account import AgendaUser, AgendaUserDep, sign_in_url
from app.web.auth import FLASH, read_form, take_flash, with_flash
from app.web.commune_field import read_communes
from app.web.forms import booking_form, not_booked
from app.web.render import page, redirect

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
# Signing in first: /agenda/{practitioner_id} would otherwise take /agenda/connexion.
router.include_router(agenda_sign_in.router)

_SLOTS_SHOWN = 100


# The booking page ---------------------------------------------------------------------------


@dataclass
class Doctor:
    practitioner: Practitioner
    practice: Practice
    timezone: str


async def _doctor(session: AsyncSession, practitioner_id: str) -> Doctor:
    try:
        ident = uuid.UUID(practitioner_id)
    except ValueError:
        ident = None
    row = None
    if ident is not None:
        row = (
            await session.execute(
                select(Practitioner, Practice, Territory.timezone)
                .join(Practice, Practice.id == Practitioner.practice_id)
                .join(Territory, Territory.id == Practitioner.territory_id)
                .where(Practitioner.id == ident)
            )
        ).one_or_none()
    if row is None:
        raise NotFound(
            "Practitioner not found",
            page_message="Ce médecin n'existe pas, ou il n'a pas de page de réservation ici.",
        )
    return Doctor(row[0], row[1], row[2])


async def _caller(session: AsyncSession, user: AgendaUser, doctor: Doctor) -> Caller:
    caller = await sign_in.booking_caller(
        session, user.account_id, doctor.practitioner.territory_id
    )
    if caller is None:
        raise Forbidden(
            "No SAS is linked to this practitioner's territory",
            page_message="La réservation n'est pas ouverte pour ce médecin : son territoire "
            "n'est rattaché à aucun SAS.",
        )
    return caller


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _query_without(request: Request, *names: str) -> str:
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in names]
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in kept)


async def _booking_page(
    request: Request,
    session: AsyncSession,
    user: AgendaUser,
    doctor: Doctor,
    caller: Caller,
    *,
    booking: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    taken: str | None = None,
    status: int = 200,
    choices: dict[str, list[Any]] | None = None,
) -> Response:
    cursor = request.query_params.get("suite")
    try:
        rows, next_cursor = await slot_search.search(
            session,
            caller,
            start=None,
            end=None,
            modality=None,
            commune_insee=None,
            near=None,
            radius_km=None,
            practitioner_id=doctor.practitioner.id,
            cursor=cursor,
            limit=_SLOTS_SHOWN,
        )
    except ValidationFailed:  # a stale or forged cursor
        rows, next_cursor = [], None
    errors = errors or {}
    values = booking or {}
    values.setdefault("jeton", str(uuid.uuid4()))  # the Idempotency-Key of this attempt
    query = _query_without(request, "suite")
    flash = take_flash(request)
    response = page(
        "agenda.html",
        status,
        agenda_user=user,
        doctor=doctor,
        slots=rows,
        next_cursor=next_cursor,
        booking=values,
        errors=errors,
        first_error=next(iter(errors), None),
        choices=choices or {},
        taken=taken,
        flash=flash,
        action=f"/agenda/{doctor.practitioner.id}/reserver" + (f"?{query}" if query else ""),
        more=f"/agenda/{doctor.practitioner.id}?"
        + (f"{query}&" if query else "")
        + f"suite={quote(next_cursor or '', safe='')}",
    )
    if flash is not None:
        response.delete_cookie(FLASH, path="/")
    return response


@router.get("/agenda/{practitioner_id}")
async def booking_page(
    request: Request, session: SessionDep, user: AgendaUserDep, practitioner_id: str
) -> Response:
    if user is None:
        return redirect(sign_in_url(_here(request)))
    doctor = await _doctor(session, practitioner_id)
    caller = await _caller(session, user, doctor)
    return await _booking_page(request, session, user, doctor, caller)


@router.post("/agenda/{practitioner_id}/reserver")
async def book(
    request: Request, session: SessionDep, user: AgendaUserDep, practitioner_id: str
) -> Response:
    """Book the chosen slot with the account as operator. A slot taken meanwhile shows the
    page again with the message, the patient's details kept."""
    query = _query_without(request)
    page_url = f"/agenda/{practitioner_id}" + (f"?{query}" if query else "")
    if user is None:  # signed out, expired or deactivated meanwhile: nothing is booked
        return redirect(sign_in_url(page_url))
    form = await read_form(request)
    if not user.check_csrf(form.get("csrf")):
        raise Forbidden(
            "Missing or invalid CSRF token",
            page_message="Le jeton de sécurité du formulaire est absent ou invalide : "
            "rechargez la page et recommencez.",
        )
    doctor = await _doctor(session, practitioner_id)
    caller = await _caller(session, user, doctor)
    system, value = user.operator
    mine = [doctor.practice.commune_insee]
    typed = await read_communes(session, form, ["patient.commune_insee"], prefer=mine)
    body, errors, token = booking_form(typed.form, operator={"system": system, "value": value})
    errors.update(typed.errors)
    if body is None or errors:
        return await _booking_page(
            request, session, user, doctor, caller, booking=typed.values(form), errors=errors,
            status=422, choices=typed.choices,
        )  # fmt: skip
    slot_practitioner = await session.scalar(
        select(Slot.practitioner_id).where(Slot.id == body.slot_id)
    )

    async def run() -> BookingOut:
        if slot_practitioner != doctor.practitioner.id:  # a slot of another page
            raise NotFound("Slot not found")
        return booking_views.render(await booking_creation.book(session, caller, body))

    try:
        response = await idempotent(session, caller, token, "POST /v1/bookings", body, run)
    except (SlotUnavailable, NotFound, ValidationFailed) as exc:
        await session.rollback()
        doctor = await _doctor(session, practitioner_id)  # the rollback expired it
        values = form.values()
        values.pop("slot_id", None)
        values["jeton"] = str(uuid.uuid4())
        return await _booking_page(
            request,
            session,
            user,
            doctor,
            caller,
            booking=values,
            taken=not_booked(exc, "Ce formulaire a déjà servi à une réservation."),
            status=409,
        )
    booking_id = json.loads(bytes(response.body))["id"]
    target = f"/agenda/{practitioner_id}/rendez-vous/{booking_id}" + (f"?{query}" if query else "")
    return with_flash(redirect(target), request, "Rendez-vous réservé.")


@router.get("/agenda/{practitioner_id}/rendez-vous/{booking_id}")
async def booked(
    request: Request,
    session: SessionDep,
    user: AgendaUserDep,
    practitioner_id: str,
    booking_id: uuid.UUID,
) -> Response:
    """The confirmation: what is needed to receive the patient, for the account that booked
    it (and only that one); written to the access log like every booking shown."""
    if user is None:
        return redirect(sign_in_url(_here(request)))
    doctor = await _doctor(session, practitioner_id)
    caller = await _caller(session, user, doctor)
    try:
        view = await booking_views.get_booking(session, caller, booking_id)
    except NotFound:
        view = None
    if (
        view is None
        or view.booking.operator_account_id != user.account_id
        or view.booking.practitioner_id != doctor.practitioner.id
    ):
        raise NotFound("Booking not found", page_message="Ce rendez-vous est introuvable.")
    shown = booking_views.render(view)
    await log_access(session, caller, "booking", [(shown.id, shown.territory_id)], "read")
    flash = take_flash(request)
    query = _query_without(request)
    response = page(
        "agenda_booked.html",
        200,
        agenda_user=user,
        doctor=doctor,
        b=shown,
        flash=flash,
        platform_told=get_settings().sas_platform_url is not None,  # as appointments.notify
        back=f"/agenda/{practitioner_id}" + (f"?{query}" if query else ""),
    )
    if flash is not None:
        response.delete_cookie(FLASH, path="/")
    return response
