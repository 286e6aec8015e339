"""A practice GP's one-off slots and absences (/cabinet/medecins/{id}/creneau, /absence): the
forms, the absence's page and its lifting."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.activity.audit import log_shown
from app.api.deps import SessionDep
from app.crisis.declaration import running_crisis
from app.crisis.models import Crisis
from app.directory.practitioner_service import get_practitioner
from app.errors import Conflict, ValidationFailed
from app.scheduling import booking_views, one_off_slots, unavailabilities
from app.scheduling.booking_schemas import BookingOut
from app.scheduling.schemas import OneOffSlotIn, UnavailabilityIn
from app.web.auth import Form, FormDep, UserDep, done, require_role, show
from app.web.confirm import ask_confirmation, confirmed
from app.web.forms import local_datetime, nested, parse, service_errors
from app.web.french import count_of
from app.web.practice_publishing import PUBLISHERS, overlap_message, publishing_zone
from app.web.render import when

router = APIRouter(prefix="/cabinet", include_in_schema=False)


def _period(form: Form, tz: ZoneInfo) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in ("start", "end"):
        if form.get(name):
            data[name] = local_datetime(form.get(name), tz)
    return data


def _local_minute(value: str) -> bool:
    try:
        return len(value) == 16 and datetime.strptime(value, "%Y-%m-%dT%H:%M") is not None
    except ValueError:
        return False


def _crisis_capacity(
    form: Form, crisis: Crisis | None, body: OneOffSlotIn | None
) -> tuple[uuid.UUID | None, dict[str, str]]:
    """The box "capacité de crise", shown while a crisis runs in the GP's territory: the
    slot carries the crisis (the SAS finds it first); it must be visible to the SAS."""
    if form.get("crise") != "true":
        return None, {}
    if crisis is None:
        return None, {"crise": "Aucune crise n'est en cours sur le territoire : décochez la case."}
    if body is not None and body.visibility not in ("sas", "public"):
        return None, {"visibility": "Une capacité de crise est pour le SAS : choisissez SAS."}
    return crisis.id, {}


@router.get("/medecins/{practitioner_id}/creneau")
async def slot_form(
    request: Request,
    session: SessionDep,
    user: UserDep,
    practitioner_id: uuid.UUID,
    debut: str = "",
    fin: str = "",
) -> Response:
    """The one-off slot form; `debut` and `fin` (local, YYYY-MM-DDTHH:MM) prefill it, as the
    link of a call for slots does (app.web.call_link_pages)."""
    require_role(user, *PUBLISHERS)
    practitioner = await get_practitioner(session, user.caller, practitioner_id)
    await publishing_zone(session, practitioner.id, user)
    values = {"modality": "cabinet", "visibility": "sas"}
    values.update({k: v for k, v in (("start", debut), ("end", fin)) if _local_minute(v)})
    crisis = await running_crisis(session, practitioner.territory_id)
    return show(request, user, "slot_form.html", practitioner=practitioner, values=values,
                errors={}, first_error=None, crisis=crisis)  # fmt: skip


@router.post("/medecins/{practitioner_id}/creneau")
async def create_slot(
    request: Request, session: SessionDep, user: UserDep, form: FormDep, practitioner_id: uuid.UUID
) -> Response:
    require_role(user, *PUBLISHERS)
    practitioner = await get_practitioner(session, user.caller, practitioner_id)
    tz = await publishing_zone(session, practitioner.id, user)
    body, errors = parse(OneOffSlotIn, {**nested(form, "modality", "visibility"),
                                        **_period(form, tz)})  # fmt: skip
    crisis = await running_crisis(session, practitioner.territory_id)
    crisis_id, crisis_error = _crisis_capacity(form, crisis, body)
    errors.update(crisis_error)
    if body is not None and not crisis_error:
        try:
            await one_off_slots.create_one_off_slot(
                session, user.caller, practitioner.id, body, crisis_id=crisis_id
            )
        except (ValidationFailed, Conflict) as exc:
            await session.rollback()
            practitioner = await get_practitioner(session, user.caller, practitioner_id)
            if isinstance(exc, ValidationFailed):
                errors = service_errors(exc)
            elif exc.extra.get("overlapping"):
                errors = {"_form": overlap_message(exc, tz)}
            else:
                errors = {"_form": "Le médecin est déclaré absent sur cette période."}
        else:
            return done(
                request,
                f"/cabinet/medecins/{practitioner_id}?semaine={body.start.astimezone(tz).date()}",
                f"Créneau ajouté le {when(body.start, tz)}.",
            )
    return show(request, user, "slot_form.html", 422 if errors else 200,
                practitioner=practitioner, values=form.values(), errors=errors,
                first_error=next(iter(errors), None), crisis=crisis)  # fmt: skip


@router.get("/medecins/{practitioner_id}/absence")
async def absence_form(
    request: Request, session: SessionDep, user: UserDep, practitioner_id: uuid.UUID
) -> Response:
    require_role(user, *PUBLISHERS)
    practitioner = await get_practitioner(session, user.caller, practitioner_id)
    await publishing_zone(session, practitioner.id, user)
    return show(request, user, "absence_form.html", practitioner=practitioner, values={},
                errors={}, first_error=None)  # fmt: skip


@router.post("/medecins/{practitioner_id}/absence")
async def create_absence(
    request: Request, session: SessionDep, user: UserDep, form: FormDep, practitioner_id: uuid.UUID
) -> Response:
    require_role(user, *PUBLISHERS)
    practitioner = await get_practitioner(session, user.caller, practitioner_id)
    tz = await publishing_zone(session, practitioner.id, user)
    body, errors = parse(UnavailabilityIn, {**nested(form, "reason"), **_period(form, tz)})
    if body is None:
        return show(request, user, "absence_form.html", 422, practitioner=practitioner,
                    values=form.values(), errors=errors,
                    first_error=next(iter(errors), None))  # fmt: skip
    try:
        absence, count, conflicts, _ = await unavailabilities.create_unavailability(
            session, user.caller, practitioner.id, body
        )
    except Conflict as exc:  # another absence of the GP covers part of this one
        await session.rollback()
        practitioner = await get_practitioner(session, user.caller, practitioner_id)
        start = datetime.fromisoformat(exc.extra["unavailable_from"])
        end = datetime.fromisoformat(exc.extra["unavailable_until"])
        errors = {"_form": (
            f"Une absence est déjà enregistrée du {when(start, tz)} au {when(end, tz)} : "
            "modifiez les dates, ou levez d'abord l'absence existante."
        )}  # fmt: skip
        return show(request, user, "absence_form.html", 409, practitioner=practitioner,
                    values=form.values(), errors=errors, first_error="_form",
                    existing=exc.extra["unavailability_id"])  # fmt: skip
    message = f"Absence enregistrée : {count_of(count, 'créneau rendu indisponible')}."
    if conflicts:
        message += f" {count_of(len(conflicts), 'rendez-vous réservé')} à traiter ci-dessous."
    return done(request, f"/cabinet/medecins/{practitioner_id}/absences/{absence.id}", message)


@router.get("/medecins/{practitioner_id}/absences/{absence_id}")
async def absence_page(
    request: Request,
    session: SessionDep,
    user: UserDep,
    practitioner_id: uuid.UUID,
    absence_id: uuid.UUID,
) -> Response:
    """An absence and the bookings it conflicts with, each with its patient, to call them."""
    require_role(user, *PUBLISHERS)
    practitioner = await get_practitioner(session, user.caller, practitioner_id)
    absence, booked, tz = await unavailabilities.get_unavailability(
        session, user.caller, practitioner.id, absence_id
    )
    slot_ids = {c.slot_id for c in booked if c.slot_id}
    booking_ids = {c.booking_id for c in booked if c.booking_id}  # surnuméraires
    conflicts: list[BookingOut] = []
    if booked:
        views, _ = await booking_views.list_bookings(
            session, user.caller, status=None, start=booked[0].start,
            end=booked[-1].start + timedelta(seconds=1), cursor=None, limit=500,
        )  # fmt: skip
        conflicts = [
            b
            for b in map(booking_views.render, views)
            if (b.slot and b.slot.id in slot_ids and b.status == "booked") or b.id in booking_ids
        ]
        await log_shown(session, user.caller, "booking", conflicts, "list")
    return show(request, user, "absence.html", practitioner=practitioner, absence=absence,
                conflicts=conflicts, tz=tz)  # fmt: skip


@router.post("/medecins/{practitioner_id}/absences/{absence_id}/lever")
async def lift_absence(
    request: Request,
    session: SessionDep,
    user: UserDep,
    form: FormDep,
    practitioner_id: uuid.UUID,
    absence_id: uuid.UUID,
) -> Response:
    require_role(user, *PUBLISHERS)
    if not confirmed(form):
        await unavailabilities.get_unavailability(session, user.caller, practitioner_id, absence_id)
        return ask_confirmation(
            request,
            user,
            title="Lever cette absence ?",
            message="Les créneaux de cette période redeviennent réservables par le SAS.",
            button="Lever l'absence",
            back=f"/cabinet/medecins/{practitioner_id}/absences/{absence_id}",
        )
    freed = await unavailabilities.delete_unavailability(
        session, user.caller, practitioner_id, absence_id
    )
    return done(
        request,
        f"/cabinet/medecins/{practitioner_id}",
        f"Absence levée : {count_of(freed, 'créneau')} de nouveau "
        f"{'libres' if freed > 1 else 'libre'}.",
    )
