"""A practice GP's availability rules (/cabinet/medecins/{id}/regles): the form with a preview
of the slots a rule publishes, publication, changes, the end of a rule."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.api.deps import SessionDep
from app.clock import now_utc
from app.directory.models import Practitioner
from app.directory.practitioner_service import get_practitioner
from app.errors import Conflict, ValidationFailed
from app.scheduling import preview as rule_preview
from app.scheduling import publication
from app.scheduling.models import AvailabilityRule
from app.scheduling.schemas import RuleIn, RulePatch
from app.web.auth import Form, FormDep, UserDep, WebUser, done, require_role, show
from app.web.confirm import ask_confirmation, confirmed
from app.web.forms import nested, parse, service_errors
from app.web.french import count_of
from app.web.practice_publishing import (
    PUBLISHERS,
    WEEKDAYS,
    overlap_message,
    publishing_zone,
    weekly_days,
)

router = APIRouter(prefix="/cabinet", include_in_schema=False)

RULE_FIELDS = ("start_time", "end_time", "slot_minutes", "modality", "visibility",
               "valid_from", "valid_until")  # fmt: skip


def _rule_values(rule: AvailabilityRule | None) -> dict[str, Any]:
    if rule is None:
        today = now_utc().date().isoformat()
        return {"jours": [], "intervalle": "1", "start_time": "17:00", "end_time": "19:00",
                "slot_minutes": "20", "modality": "cabinet", "visibility": "sas",
                "valid_from": today}  # fmt: skip
    weekly = weekly_days(rule.rrule)
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


def _preview_days(preview: list[rule_preview.PreviewSlot], tz: ZoneInfo) -> list[dict[str, Any]]:
    days: dict[date, list[rule_preview.PreviewSlot]] = {}
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
    preview: list[rule_preview.PreviewSlot] | None = None,
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


@router.get("/medecins/{practitioner_id}/regles/nouvelle")
async def new_rule(
    request: Request, session: SessionDep, user: UserDep, practitioner_id: uuid.UUID
) -> Response:
    require_role(user, *PUBLISHERS)
    practitioner = await get_practitioner(session, user.caller, practitioner_id)
    await publishing_zone(session, practitioner.id, user)  # the publishing check, as the API's
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
    rule, practitioner, _ = await publication.get_rule(
        session, user.caller, practitioner_id, rule_id
    )
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
        rule, _, _ = await publication.get_rule(session, user.caller, practitioner.id, rule_id)
    tz = await publishing_zone(session, practitioner.id, user)
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
            preview, tz = await rule_preview.preview_rule(
                session, user.caller, practitioner.id, body, rule_id=rule_id
            )
        except ValidationFailed as exc:
            return await _rule_page(request, session, user, practitioner, rule, values,
                                    errors=service_errors(exc), status=422)  # fmt: skip
        return await _rule_page(request, session, user, practitioner, rule, values,
                                preview=preview, tz=tz)  # fmt: skip
    try:
        if rule_id is None:
            _, created, _ = await publication.create_rule(
                session, user.caller, practitioner.id, body
            )
            message = f"Règle publiée : {count_of(created, 'créneau créé')}."
        else:
            patch = RulePatch.model_validate({**body.model_dump(), "valid_until": body.valid_until})
            _, counts = await publication.update_rule(
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
            rule, _, _ = await publication.get_rule(session, user.caller, practitioner.id, rule_id)
        errors = (
            service_errors(exc)
            if isinstance(exc, ValidationFailed)
            else {"_form": overlap_message(exc, tz)}
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
        await publication.get_rule(session, user.caller, practitioner_id, rule_id)
        return ask_confirmation(
            request,
            user,
            title="Terminer cette règle ?",
            message="Ses créneaux libres à venir seront retirés de l'agenda et de la recherche "
            "du SAS. Les créneaux déjà réservés restent, avec leurs patients.",
            button="Terminer la règle",
            back=f"/cabinet/medecins/{practitioner_id}",
        )
    counts = await publication.delete_rule(session, user.caller, practitioner_id, rule_id)
    return done(
        request,
        f"/cabinet/medecins/{practitioner_id}",
        f"Règle terminée : {count_of(counts.removed, 'créneau libre retiré')}, "
        f"{count_of(counts.kept, 'réservé conservé')}.",
    )
