"""The coordinator's crisis page (/coordination/crise): the declaration form (kind, title,
start, expected end, communes by name) while no crisis runs; the running crisis with its
calls (who was called, the e-mail's status, who opened what and when) and its end, asked
for on a confirmation page first. Every action is the API's service."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.api.deps import SessionDep
from app.clock import now_utc
from app.crisis import declaration
from app.crisis.calls import KIND_LABELS
from app.crisis.models import Crisis, CrisisCall
from app.crisis.schemas import CrisisIn
from app.directory.models import Practitioner, Territory
from app.errors import Conflict, ValidationFailed
from app.security import COORDINATOR
from app.web.auth import Form, FormDep, UserDep, WebUser, done, require_role, show
from app.web.commune_field import caller_communes, read_communes
from app.web.confirm import ask_confirmation, confirmed
from app.web.crisis_banner import crisis_view
from app.web.forms import local_datetime, parse, service_errors

router = APIRouter(prefix="/coordination/crise", include_in_schema=False)
MAIL_STATUSES = {
    "pending": "en cours d'envoi",
    "sent": "envoyé",
    "failed": "échec de l'envoi",
    "none": "pas d'e-mail",
}


async def _zone(session: AsyncSession, user: WebUser) -> ZoneInfo:
    territory = await session.get(Territory, declaration.declaring_territory(user.caller, None))
    assert territory is not None
    return ZoneInfo(territory.timezone)


async def _calls(session: AsyncSession, crisis: Crisis, tz: ZoneInfo) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(CrisisCall, Practitioner.given_name, Practitioner.family_name)
        .join(Practitioner, Practitioner.id == CrisisCall.practitioner_id)
        .where(CrisisCall.crisis_id == crisis.id)
        .order_by(Practitioner.family_name, Practitioner.given_name)
    )
    return [
        {
            "name": f"Dr {given} {family}",
            "called": call.sent_at.astimezone(tz),
            "mail": MAIL_STATUSES.get(call.mail_status, call.mail_status),
            "opened": call.opened_at.astimezone(tz) if call.opened_at else None,
            "slots": call.slots_opened,
            "cap_raised": call.cap_before is not None,
        }
        for call, given, family in rows
    ]


async def _page(
    request: Request,
    session: AsyncSession,
    user: WebUser,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    tz = await _zone(session, user)
    territory_id = declaration.declaring_territory(user.caller, None)
    running = await declaration.running_crisis(session, territory_id)
    past = list(
        await session.scalars(
            select(Crisis)
            .where(Crisis.territory_id == territory_id, Crisis.ended_at.is_not(None))
            .order_by(Crisis.declared_at.desc())
            .limit(20)
        )
    )
    plan = await declaration.current_plan(session, territory_id)
    now = now_utc().astimezone(tz)
    if values is None:
        values = {
            "kind": "epidemic",
            "started_at": f"{now:%Y-%m-%dT%H:%M}",
            "expected_end_at": f"{now + timedelta(days=7):%Y-%m-%dT%H:%M}",
        }
    errors = errors or {}
    return show(
        request,
        user,
        "crisis.html",
        status,
        running=await crisis_view(session, running, tz) if running else None,
        calls=await _calls(session, running, tz) if running else [],
        past=[await crisis_view(session, c, tz) for c in past],
        volunteers=len(plan[1].volunteers) if plan else None,
        values=values,
        errors=errors,
        first_error=next(iter(errors), None),
        kinds=[(k, label) for k, label in KIND_LABELS.items()],
    )


@router.get("")
async def crisis_page(request: Request, session: SessionDep, user: UserDep) -> Response:
    require_role(user, COORDINATOR)
    return await _page(request, session, user)


def _body(form: Form, tz: ZoneInfo) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": form.get("kind"), "title": form.get("title")}
    for name in ("started_at", "expected_end_at"):
        if form.get(name):
            data[name] = local_datetime(form.get(name), tz)
    data["communes"] = [c.strip() for c in form.get("communes").split(",") if c.strip()]
    return data


@router.post("")
async def declare_crisis(
    request: Request, session: SessionDep, user: UserDep, form: FormDep
) -> Response:
    require_role(user, COORDINATOR)
    tz = await _zone(session, user)
    typed = await read_communes(
        session,
        form,
        lists=["communes"],
        prefer=await caller_communes(session, user.caller),
        with_list=False,
    )
    body, errors = parse(CrisisIn, _body(typed.form, tz))
    errors = {**errors, **typed.errors}
    if body is not None and not errors:
        try:
            out = await declaration.declare(
                session, user.caller, body, now_utc(), request.app.state.settings
            )
        except (ValidationFailed, Conflict) as exc:
            await session.rollback()
            errors = (
                service_errors(exc)
                if isinstance(exc, ValidationFailed)
                else {"_form": "Une crise est déjà en cours sur votre territoire."}
            )
        else:
            called = (
                f"{out.volunteers_called} volontaire(s) appelé(s)"
                if out.plan_id
                else "aucun volontaire appelé : le territoire n'a pas de plan de crise"
            )
            return done(request, "/coordination/crise", f"Crise déclarée : {called}.")
    errors = {("communes" if k.startswith("communes") else k): v for k, v in errors.items()}
    return await _page(request, session, user, form.values(), errors, 422)


NONE_RUNNING = "Aucune crise n'est en cours."


async def _running(session: AsyncSession, user: WebUser) -> Crisis | None:
    """The crisis running in the coordinator's territory (the page's actions act on it)."""
    require_role(user, COORDINATOR)
    territory_id = declaration.declaring_territory(user.caller, None)
    return await declaration.running_crisis(session, territory_id)


@router.post("/appels")
async def call_again(
    request: Request, session: SessionDep, user: UserDep, form: FormDep
) -> Response:
    """Call the volunteers the plan gained since the declaration (nobody twice)."""
    running = await _running(session, user)
    if running is None:
        return done(request, "/coordination/crise", NONE_RUNNING)
    before = (await declaration.crisis_out(session, running)).volunteers_called
    out = await declaration.call_again(
        session, user.caller, running.id, now_utc(), request.app.state.settings
    )
    added = out.volunteers_called - before
    return done(
        request,
        "/coordination/crise",
        f"{added} nouveau(x) volontaire(s) appelé(s)"
        if added
        else "Aucun nouveau volontaire dans le plan : personne n'a été appelé deux fois.",
    )


@router.post("/fin")
async def end_crisis(
    request: Request, session: SessionDep, user: UserDep, form: FormDep
) -> Response:
    """Asks first (a confirmation page), then ends the running crisis."""
    running = await _running(session, user)
    if running is None:
        return done(request, "/coordination/crise", NONE_RUNNING)
    if not confirmed(form):
        return ask_confirmation(
            request,
            user,
            title="Terminer la crise ?",
            message=f"La crise « {running.title} » sera terminée : les créneaux de crise libres "
            "à venir seront fermés (les créneaux réservés restent), les e-mails pas encore "
            "partis ne partiront pas et les plafonds de surnuméraires relevés reviendront à "
            "leur valeur d'avant.",
            button="Terminer la crise",
            back="/coordination/crise",
        )
    out = await declaration.end(session, user.caller, running.id, now_utc())
    return done(
        request,
        "/coordination/crise",
        f"Crise terminée : {out.slots_closed} créneau(x) de crise libre(s) fermé(s), "
        f"{out.slots_kept} réservé(s) ou en cours de réservation conservé(s).",
    )
