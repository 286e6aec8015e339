"""The practice's pages (/cabinet): the week's agenda of its GPs, availability rules with a
preview of their slots, one-off slots and absences. Coordinators open the same pages for any
practice of their territory. Everything goes through the scheduling services, so the rules
and the authorisation are the API's own (another practice's GP is a 404, as in the API)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.activity.audit import log_shown
from app.api.deps import SessionDep
from app.bounds import BoundedDate
from app.directory.models import Practice, Practitioner
from app.directory.service import get_practice, get_practitioner, list_practitioners
from app.errors import Conflict, ValidationFailed
from app.sas_bridge.feed_import import last_import
from app.scheduling import booking_service, service
from app.scheduling.booking_schemas import BookingOut
from app.scheduling.models import AvailabilityRule
from app.scheduling.schemas import OneOffSlotIn, RuleIn, RulePatch, UnavailabilityIn
from app.security import ADMIN, COORDINATOR, PRACTICE
from app.web import feed_report
from app.web.auth import Form, FormDep, UserDep, WebUser, done, require_role, show
from app.web.confirm import ask_confirmation, confirmed
from app.web.forms import local_datetime, local_day_start, nested, parse, service_errors
from app.web.french import collation_key, count_of
from app.web.render import redirect, when

router = APIRouter(prefix="/cabinet", include_in_schema=False)
PUBLISHERS = (PRACTICE, COORDINATOR, ADMIN)
WEEKDAYS = [("MO", "lundi"), ("TU", "mardi"), ("WE", "mercredi"), ("TH", "jeudi"),
            ("FR", "vendredi"), ("SA", "samedi"), ("SU", "dimanche")]  # fmt: skip
RULE_FIELDS = ("start_time", "end_time", "slot_minutes", "modality", "visibility",
               "valid_from", "valid_until")  # fmt: skip


# The week's agenda ------------------------------------------------------------------------


@dataclass
class Day:
    day: date
    slots: list[dict[str, Any]]


def _monday(value: date) -> date:
    return value - timedelta(days=value.weekday())


async def _week(
    session: AsyncSession,
    user: WebUser,
    practitioners: list[Practitioner],
    monday: date,
    tz: ZoneInfo,
) -> dict[uuid.UUID, list[Day]]:
    """Each GP's slots of the week, day by day, with the booking on each booked slot."""
    start, end = local_day_start(monday, tz), local_day_start(monday + timedelta(days=7), tz)
    views, _ = await booking_service.list_bookings(
        session, user.caller, status=None, start=start, end=end, cursor=None, limit=5000
    )
    shown = [booking_service.render(v) for v in views]
    occupying = {b.slot.id: b for b in shown if b.slot and b.status not in ("cancelled", "expired")}
    # A surnuméraire is in the agenda under its booking's id.
    occupying.update(
        (b.id, b) for b in shown if b.overbooked and b.status not in ("cancelled", "expired")
    )
    await log_shown(session, user.caller, "booking", list(occupying.values()), "list")
    weeks: dict[uuid.UUID, list[Day]] = {}
    for practitioner in practitioners:
        slots, _ = await service.list_practitioner_slots(
            session, user.caller, practitioner.id, start, end
        )
        days = [Day(monday + timedelta(days=i), []) for i in range(7)]
        for slot in slots:
            local_start = slot.start.astimezone(tz)
            booking: BookingOut | None = occupying.get(slot.id)
            days[(local_start.date() - monday).days].slots.append(
                {"slot": slot, "start": local_start, "end": slot.end.astimezone(tz),
                 "booking": booking,
                 "status": booking.status if booking and slot.status == "booked" else slot.status}
            )  # fmt: skip
        weeks[practitioner.id] = days
    return weeks


async def _zone(session: AsyncSession, practitioner_id: uuid.UUID, user: WebUser) -> ZoneInfo:
    _, tz = await service.publishing_practitioner(session, user.caller, practitioner_id)
    return tz


def _week_start(semaine: date | None, tz: ZoneInfo) -> date:
    return _monday(semaine or service.now_utc().astimezone(tz).date())


@router.get("")
async def practice_home(
    request: Request,
    session: SessionDep,
    user: UserDep,
    semaine: BoundedDate | None = None,
    cabinet: uuid.UUID | None = None,
) -> Response:
    """The week's agenda of every GP of the practice (a coordinator names the practice)."""
    require_role(user, *PUBLISHERS)
    practice_id = user.caller.practice_id if user.role == PRACTICE else cabinet
    if practice_id is None:
        return redirect("/coordination/annuaire")
    practice: Practice = await get_practice(session, user.caller, practice_id)
    practitioners, _ = await list_practitioners(
        session, user.caller, territory_id=None, practice_id=practice.id, rpps=None,
        cursor=None, limit=100,
    )  # fmt: skip
    practitioners = sorted(
        practitioners, key=lambda p: collation_key(f"{p.family_name} {p.given_name}")
    )
    if not practitioners:
        return show(request, user, "practice.html", practice=practice, practitioners=[],
                    weeks={}, monday=None, tz=None, single=False)  # fmt: skip
    tz = await _zone(session, practitioners[0].id, user)
    monday = _week_start(semaine, tz)
    weeks = await _week(session, user, practitioners, monday, tz)
    return show(
        request, user, "practice.html", practice=practice, practitioners=practitioners,
        weeks=weeks, monday=monday, tz=tz, single=False,
        base=f"/cabinet?{'cabinet=' + str(practice.id) + '&' if user.role != PRACTICE else ''}",
    )  # fmt: skip


@router.get("/medecins/{practitioner_id}")
async def practitioner_page(
    request: Request,
    session: SessionDep,
    user: UserDep,
    practitioner_id: uuid.UUID,
    semaine: BoundedDate | None = None,
) -> Response:
    """One GP: the week, the availability rules, the absences to come, and the agenda feed's
    last import (the events it skipped and its conflicts)."""
    require_role(user, *PUBLISHERS)
    practitioner = await get_practitioner(session, user.caller, practitioner_id)
    rules = await service.list_rules(session, user.caller, practitioner.id)
    tz = await _zone(session, practitioner.id, user)
    monday = _week_start(semaine, tz)
    weeks = await _week(session, user, [practitioner], monday, tz)
    absences, _ = await service.list_unavailabilities(
        session, user.caller, practitioner.id, after=service.now_utc()
    )
    feed, last = await last_import(session, user.caller, practitioner.id)
    return show(
        request, user, "practitioner.html", practitioner=practitioner, practitioners=[practitioner],
        rules=[(r, describe_rule(r)) for r in rules], weeks=weeks, monday=monday, tz=tz,
        absences=absences, single=True, base=f"/cabinet/medecins/{practitioner.id}?",
        feed=feed, last_import=last, report=feed_report,
    )  # fmt: skip


# Availability rules -----------------------------------------------------------------------


def _weekly(rrule: str) -> tuple[list[str], str] | None:
    """The days and interval of a simple weekly rule, to fill the form's checkboxes."""
    parts = dict(p.split("=", 1) for p in rrule.upper().split(";") if "=" in p)
    if parts.get("FREQ") != "WEEKLY" or set(parts) - {"FREQ", "BYDAY", "INTERVAL"}:
        return None
    days = [d for d in parts.get("BYDAY", "").split(",") if d in dict(WEEKDAYS)]
    return (days, parts.get("INTERVAL", "1")) if days else None


def describe_rule(rule: AvailabilityRule) -> str:
    weekly = _weekly(rule.rrule)
    if weekly is None:
        when_text = f"règle {rule.rrule}"
    else:
        days, interval = weekly
        names = ", ".join(name for code, name in WEEKDAYS if code in days)
        when_text = f"chaque {names}" if interval == "1" else f"{names}, une semaine sur {interval}"
    until = f" jusqu'au {rule.valid_until.strftime('%d/%m/%Y')}" if rule.valid_until else ""
    return (
        f"{when_text}, de {rule.start_time:%H:%M} à {rule.end_time:%H:%M}, "
        f"créneaux de {rule.slot_minutes} min, depuis le {rule.valid_from:%d/%m/%Y}{until}"
    )


def _rule_values(rule: AvailabilityRule | None) -> dict[str, Any]:
    if rule is None:
        today = service.now_utc().date().isoformat()
        return {"jours": [], "intervalle": "1", "start_time": "17:00", "end_time": "19:00",
                "slot_minutes": "20", "modality": "cabinet", "visibility": "sas",
                "valid_from": today}  # fmt: skip
    weekly = _weekly(rule.rrule)
    values: dict[str, Any] = {
        "jours": weekly[0] if weekly else [],
        "intervalle": weekly[1] if weekly else "1",
        "rrule": "" if weekly else rule.rrule,
        "start_time": f"{rule.start_time:%H:%M}",
        "end_time": f"{rule.end_time:%H:%M}",
        "slot_minutes": str(rule.slot_minutes),
        "modality": rule.modality,
        "visibility": rule.visibility,
        "valid_from": rule.valid_from.isoformat(),
        "valid_until": rule.valid_until.isoformat() if rule.valid_until else "",
    }
    return values


def _rule_data(form: Form) -> tuple[dict[str, Any], dict[str, str]]:
    """The rule as the API takes it: the days ticked become an RRULE unless one is typed."""
    data = nested(form, *RULE_FIELDS)
    errors: dict[str, str] = {}
    typed = form.get("rrule")
    days = [d for d in form.getlist("jours") if d in dict(WEEKDAYS)]
    interval = form.get("intervalle") or "1"
    if typed:
        data["rrule"] = typed
    elif not days:
        errors["jours"] = "Cochez au moins un jour."
    elif interval not in ("1", "2", "3", "4"):
        errors["intervalle"] = "Choisissez une des fréquences proposées."
    else:
        ordered = ",".join(code for code, _ in WEEKDAYS if code in days)
        data["rrule"] = "FREQ=WEEKLY;" + (f"INTERVAL={interval};" if interval != "1" else "")
        data["rrule"] += f"BYDAY={ordered}"
    return data, errors


def _form_values(form: Form) -> dict[str, Any]:
    values: dict[str, Any] = form.values()
    values["jours"] = form.getlist("jours")
    return values


def _preview_days(preview: list[service.PreviewSlot], tz: ZoneInfo) -> list[dict[str, Any]]:
    days: dict[date, list[service.PreviewSlot]] = {}
    for p in preview:
        days.setdefault(p.start.astimezone(tz).date(), []).append(p)
    return [{"date": d, "slots": slots} for d, slots in days.items()]


async def _rule_page(
    request: Request,
    session: AsyncSession,
    user: WebUser,
    practitioner: Practitioner,
    rule: AvailabilityRule | None,
    values: dict[str, Any],
    *,
    errors: dict[str, str] | None = None,
    preview: list[service.PreviewSlot] | None = None,
    tz: ZoneInfo | None = None,
    status: int = 200,
) -> Response:
    errors = errors or {}
    blocked = [p for p in preview or [] if p.blocked_by is not None]
    return show(
        request, user, "rule_form.html", status, practitioner=practitioner, rule=rule,
        values=values, errors=errors, first_error=next(iter(errors), None), weekdays=WEEKDAYS,
        preview=_preview_days(preview, tz) if preview is not None and tz else None,
        preview_count=len(preview or []), blocked=len(blocked), tz=tz,
    )  # fmt: skip


def _overlap_message(error: Conflict, tz: ZoneInfo) -> str:
    overlapping = error.extra.get("overlapping") or []
    if not overlapping:
        return "Ces créneaux chevauchent des créneaux existants de ce médecin."
    first = datetime.fromisoformat(overlapping[0]["start"])
    return (
        f"Refusé : {count_of(len(overlapping), 'créneau existant')} de ce médecin "
        f"{'sont' if len(overlapping) > 1 else 'est'} sur ces horaires, "
        f"le premier le {when(first, tz)}. Modifiez les horaires ou terminez l'autre règle."
    )


@router.get("/medecins/{practitioner_id}/regles/nouvelle")
async def new_rule(
    request: Request, session: SessionDep, user: UserDep, practitioner_id: uuid.UUID
) -> Response:
    require_role(user, *PUBLISHERS)
    practitioner = await get_practitioner(session, user.caller, practitioner_id)
    await _zone(session, practitioner.id, user)  # the publishing check, as the API's
    return await _rule_page(request, session, user, practitioner, None, _rule_values(None))


@router.get("/medecins/{practitioner_id}/regles/{rule_id}")
async def edit_rule(
    request: Request,
    session: SessionDep,
    user: UserDep,
    practitioner_id: uuid.UUID,
    rule_id: uuid.UUID,
) -> Response:
    require_role(user, *PUBLISHERS)
    rule, practitioner, _ = await service.get_rule(session, user.caller, practitioner_id, rule_id)
    return await _rule_page(request, session, user, practitioner, rule, _rule_values(rule))


async def _save_rule(
    request: Request,
    session: AsyncSession,
    user: WebUser,
    form: Form,
    practitioner_id: uuid.UUID,
    rule_id: uuid.UUID | None,
) -> Response:
    """Preview (writes nothing) or publish; errors come back next to their fields."""
    practitioner = await get_practitioner(session, user.caller, practitioner_id)
    rule = None
    if rule_id is not None:
        rule, _, _ = await service.get_rule(session, user.caller, practitioner.id, rule_id)
    tz = await _zone(session, practitioner.id, user)
    values = _form_values(form)
    data, errors = _rule_data(form)
    body, model_errors = parse(RuleIn, data)
    if "jours" in errors:  # no day ticked: the RRULE they make is missing, not typed wrong
        model_errors.pop("rrule", None)
    errors.update(model_errors)
    if body is None or errors:
        return await _rule_page(request, session, user, practitioner, rule, values,
                                errors=errors, status=422)  # fmt: skip
    if form.get("action") != "publier":
        try:
            preview, tz = await service.preview_rule(
                session, user.caller, practitioner.id, body, rule_id=rule_id
            )
        except ValidationFailed as exc:
            return await _rule_page(request, session, user, practitioner, rule, values,
                                    errors=service_errors(exc), status=422)  # fmt: skip
        return await _rule_page(request, session, user, practitioner, rule, values,
                                preview=preview, tz=tz)  # fmt: skip
    try:
        if rule_id is None:
            _, created, _ = await service.create_rule(session, user.caller, practitioner.id, body)
            message = f"Règle publiée : {count_of(created, 'créneau créé')}."
        else:
            patch = RulePatch.model_validate({**body.model_dump(), "valid_until": body.valid_until})
            _, counts = await service.update_rule(
                session, user.caller, practitioner.id, rule_id, patch
            )
            message = (
                f"Règle modifiée : {count_of(counts.created, 'créneau créé')}, "
                f"{count_of(counts.removed, 'retiré')}, "
                f"{count_of(counts.kept, 'réservé conservé')}."
            )
    except (ValidationFailed, Conflict) as exc:
        await session.rollback()
        practitioner = await get_practitioner(session, user.caller, practitioner_id)
        if rule_id is not None:
            rule, _, _ = await service.get_rule(session, user.caller, practitioner.id, rule_id)
        errors = (
            service_errors(exc)
            if isinstance(exc, ValidationFailed)
            else {"_form": _overlap_message(exc, tz)}
        )
        return await _rule_page(request, session, user, practitioner, rule, values,
                                errors=errors, status=exc.status)  # fmt: skip
    return done(request, f"/cabinet/medecins/{practitioner_id}", message)


@router.post("/medecins/{practitioner_id}/regles/nouvelle")
async def create_rule(
    request: Request, session: SessionDep, user: UserDep, form: FormDep, practitioner_id: uuid.UUID
) -> Response:
    require_role(user, *PUBLISHERS)
    return await _save_rule(request, session, user, form, practitioner_id, None)


@router.post("/medecins/{practitioner_id}/regles/{rule_id}")
async def update_rule(
    request: Request,
    session: SessionDep,
    user: UserDep,
    form: FormDep,
    practitioner_id: uuid.UUID,
    rule_id: uuid.UUID,
) -> Response:
    require_role(user, *PUBLISHERS)
    return await _save_rule(request, session, user, form, practitioner_id, rule_id)


@router.post("/medecins/{practitioner_id}/regles/{rule_id}/terminer")
async def end_rule(
    request: Request,
    session: SessionDep,
    user: UserDep,
    form: FormDep,
    practitioner_id: uuid.UUID,
    rule_id: uuid.UUID,
) -> Response:
    """End a rule: its future free slots go; held and booked ones stay."""
    require_role(user, *PUBLISHERS)
    if not confirmed(form):
        await service.get_rule(session, user.caller, practitioner_id, rule_id)
        return ask_confirmation(
            request,
            user,
            title="Terminer cette règle ?",
            message="Ses créneaux libres à venir seront retirés de l'agenda et de la recherche "
            "du SAS. Les créneaux déjà réservés restent, avec leurs patients.",
            button="Terminer la règle",
            back=f"/cabinet/medecins/{practitioner_id}",
        )
    counts = await service.delete_rule(session, user.caller, practitioner_id, rule_id)
    return done(
        request,
        f"/cabinet/medecins/{practitioner_id}",
        f"Règle terminée : {count_of(counts.removed, 'créneau libre retiré')}, "
        f"{count_of(counts.kept, 'réservé conservé')}.",
    )


# One-off slots and absences ---------------------------------------------------------------


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
    await _zone(session, practitioner.id, user)
    values = {"modality": "cabinet", "visibility": "sas"}
    values.update({k: v for k, v in (("start", debut), ("end", fin)) if _local_minute(v)})
    return show(request, user, "slot_form.html", practitioner=practitioner, values=values,
                errors={}, first_error=None)  # fmt: skip


@router.post("/medecins/{practitioner_id}/creneau")
async def create_slot(
    request: Request, session: SessionDep, user: UserDep, form: FormDep, practitioner_id: uuid.UUID
) -> Response:
    require_role(user, *PUBLISHERS)
    practitioner = await get_practitioner(session, user.caller, practitioner_id)
    tz = await _zone(session, practitioner.id, user)
    body, errors = parse(OneOffSlotIn, {**nested(form, "modality", "visibility"),
                                        **_period(form, tz)})  # fmt: skip
    if body is not None:
        try:
            await service.create_one_off_slot(session, user.caller, practitioner.id, body)
        except (ValidationFailed, Conflict) as exc:
            await session.rollback()
            practitioner = await get_practitioner(session, user.caller, practitioner_id)
            if isinstance(exc, ValidationFailed):
                errors = service_errors(exc)
            elif exc.extra.get("overlapping"):
                errors = {"_form": _overlap_message(exc, tz)}
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
                first_error=next(iter(errors), None))  # fmt: skip


@router.get("/medecins/{practitioner_id}/absence")
async def absence_form(
    request: Request, session: SessionDep, user: UserDep, practitioner_id: uuid.UUID
) -> Response:
    require_role(user, *PUBLISHERS)
    practitioner = await get_practitioner(session, user.caller, practitioner_id)
    await _zone(session, practitioner.id, user)
    return show(request, user, "absence_form.html", practitioner=practitioner, values={},
                errors={}, first_error=None)  # fmt: skip


@router.post("/medecins/{practitioner_id}/absence")
async def create_absence(
    request: Request, session: SessionDep, user: UserDep, form: FormDep, practitioner_id: uuid.UUID
) -> Response:
    require_role(user, *PUBLISHERS)
    practitioner = await get_practitioner(session, user.caller, practitioner_id)
    tz = await _zone(session, practitioner.id, user)
    body, errors = parse(UnavailabilityIn, {**nested(form, "reason"), **_period(form, tz)})
    if body is None:
        return show(request, user, "absence_form.html", 422, practitioner=practitioner,
                    values=form.values(), errors=errors,
                    first_error=next(iter(errors), None))  # fmt: skip
    try:
        absence, count, conflicts, _ = await service.create_unavailability(
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
    absence, booked, tz = await service.get_unavailability(
        session, user.caller, practitioner.id, absence_id
    )
    slot_ids = {c.slot_id for c in booked if c.slot_id}
    booking_ids = {c.booking_id for c in booked if c.booking_id}  # surnuméraires
    conflicts: list[BookingOut] = []
    if booked:
        views, _ = await booking_service.list_bookings(
            session, user.caller, status=None, start=booked[0].start,
            end=booked[-1].start + timedelta(seconds=1), cursor=None, limit=500,
        )  # fmt: skip
        conflicts = [
            b
            for b in map(booking_service.render, views)
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
        await service.get_unavailability(session, user.caller, practitioner_id, absence_id)
        return ask_confirmation(
            request,
            user,
            title="Lever cette absence ?",
            message="Les créneaux de cette période redeviennent réservables par le SAS.",
            button="Lever l'absence",
            back=f"/cabinet/medecins/{practitioner_id}/absences/{absence_id}",
        )
    freed = await service.delete_unavailability(session, user.caller, practitioner_id, absence_id)
    return done(
        request,
        f"/cabinet/medecins/{practitioner_id}",
        f"Absence levée : {count_of(freed, 'créneau')} de nouveau "
        f"{'libres' if freed > 1 else 'libre'}.",
    )
