"""The crisis page (/coordination/crise, the menu's one « Crise »): the declaration form
(kind, title, start, expected end, communes by name) while no crisis runs; the running crisis
with its calls (who was called, the e-mail's status, who opened what and when), its report
and its end, asked for on a confirmation page first; the plan in force (its last review, the
day the next falls due, links to read, print and write it); the past crises and their
reports. The coordinator's for its territory; an admin (the ARS) chooses the territory first
(`?territoire=`, carried by every form). Every action is the API's service."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.api.deps import SessionDep
from app.clock import now_utc
from app.crisis import declaration, listing, plans
from app.crisis.calls import KIND_LABELS
from app.crisis.models import Crisis, CrisisCall
from app.crisis.schemas import CrisisIn
from app.directory import communes, territory_service
from app.directory.models import Practitioner, Territory
from app.errors import Conflict, NotFound, ValidationFailed
from app.security import ADMIN, COORDINATOR
from app.web.auth import Form, FormDep, UserDep, WebUser, done, require_role, show
from app.web.commune_field import ListChoice, read_communes, with_model_errors
from app.web.confirm import ask_confirmation, confirmed
from app.web.crisis_banner import crisis_view
from app.web.forms import local_datetime, parse, service_errors

router = APIRouter(prefix="/coordination/crise", include_in_schema=False)
DECLARERS = (COORDINATOR, ADMIN)
MAIL_STATUSES = {
    "pending": "en cours d'envoi",
    "sent": "envoyé",
    "failed": "échec de l'envoi",
    "none": "pas d'e-mail",
}


async def _territory(
    session: AsyncSession, user: WebUser, territoire: str | None
) -> Territory | None:
    """The coordinator's own territory; the one an admin (the ARS) chose with `?territoire=`
    (None until it has chosen)."""
    require_role(user, *DECLARERS)
    if user.role != ADMIN:
        wanted: uuid.UUID | None = declaration.declaring_territory(user.caller, None)
    else:
        try:
            wanted = uuid.UUID(territoire) if territoire else None
        except ValueError:
            wanted = None
        if wanted is None and territoire:
            raise NotFound("Territory not found", page_message="Territoire introuvable.")
    territory = await session.get(Territory, wanted) if wanted else None
    if wanted is not None and territory is None:
        raise NotFound("Territory not found", page_message="Territoire introuvable.")
    return territory


def _query(user: WebUser, territory: Territory) -> str:
    """What the page's addresses carry: an admin's choice of territory."""
    return f"?territoire={territory.id}" if user.role == ADMIN else ""


def _here(user: WebUser, territory: Territory) -> str:
    return f"/coordination/crise{_query(user, territory)}"


PAST = 20  # the past crises the page lists (all of them: the list of reports)


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


async def _plan(session: AsyncSession, territory: Territory) -> dict[str, Any] | None:
    """The plan in force: its version, last review, the day its review falls due."""
    plan = await plans.current_of(session, territory.id)
    if plan is None:
        return None
    status = plans.review(plan.reviewed_on, plans.local_today(now_utc(), territory.timezone))
    return {"id": plan.id, "version": plan.version, "reviewed_on": status.reviewed_on,
            "due_on": status.due_on, "due": status.due}  # fmt: skip


async def _choose_page(request: Request, session: AsyncSession, user: WebUser) -> Response:
    territories, _ = await territory_service.list_territories(
        session, user.caller, cursor=None, limit=500
    )
    options = sorted(((str(t.id), t.name) for t in territories), key=lambda o: o[1])
    return show(request, user, "crisis_choose.html", territories=options)


async def _page(
    request: Request,
    session: AsyncSession,
    user: WebUser,
    territory: Territory,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    choices: dict[str, list[ListChoice]] | None = None,
) -> Response:
    tz = ZoneInfo(territory.timezone)
    running = await declaration.running_crisis(session, territory.id)
    crises, more = await listing.list_crises(session, user.caller, territory.id, None, PAST)
    plan = await declaration.current_plan(session, territory.id)
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
        territory=territory,
        query=_query(user, territory),
        reports="/coordination/rapports-de-crise"
        + (f"?territory_id={territory.id}" if user.role == ADMIN else ""),
        can_edit_plan=user.role == COORDINATOR,
        more=more is not None,
        running=await crisis_view(session, running, tz) if running else None,
        calls=await _calls(session, running, tz) if running else [],
        past=[c for c in crises if not c.running],
        labels=KIND_LABELS,
        tz=territory.timezone,
        plan=await _plan(session, territory),
        volunteers=len(plan[1].volunteers) if plan else None,
        values=values,
        errors=errors,
        first_error=next(iter(errors), None),
        choices=choices or {},
        kinds=[(k, label) for k, label in KIND_LABELS.items()],
    )


@router.get("")
async def crisis_page(
    request: Request, session: SessionDep, user: UserDep, territoire: str | None = None
) -> Response:
    """The running crisis (or the declaration form), the plan, the past crises and their
    reports; an admin (the ARS) first chooses the territory."""
    territory = await _territory(session, user, territoire)
    if territory is None:
        return await _choose_page(request, session, user)
    return await _page(request, session, user, territory)


def _body(form: Form, territory: Territory) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": form.get("kind"), "title": form.get("title")}
    for name in ("started_at", "expected_end_at"):
        if form.get(name):
            data[name] = local_datetime(form.get(name), ZoneInfo(territory.timezone))
    data["communes"] = [c.strip() for c in form.get("communes").split(",") if c.strip()]
    return data


@router.post("")
async def declare_crisis(
    request: Request,
    session: SessionDep,
    user: UserDep,
    form: FormDep,
    territoire: str | None = None,
) -> Response:
    territory = await _territory(session, user, territoire)
    if territory is None:
        return await _choose_page(request, session, user)
    typed = await read_communes(
        session,
        form,
        lists=["communes"],
        prefer=await communes.territory_communes(session, territory.id),
    )
    body, errors = parse(CrisisIn, _body(typed.form, territory))
    errors = with_model_errors(typed, errors)
    if body is not None and not errors:
        if user.role == ADMIN:
            body = body.model_copy(update={"territory_id": territory.id})
        try:
            out = await declaration.declare(
                session, user.caller, body, now_utc(), request.app.state.settings
            )
        except (ValidationFailed, Conflict) as exc:
            await session.rollback()
            errors = (
                service_errors(exc)
                if isinstance(exc, ValidationFailed)
                else {"_form": "Une crise est déjà en cours sur ce territoire."}
            )
        else:
            called = (
                f"{out.volunteers_called} volontaire(s) appelé(s)"
                if out.plan_id
                else "aucun volontaire appelé : le territoire n'a pas de plan de crise"
            )
            return done(request, _here(user, territory), f"Crise déclarée : {called}.")
    errors = {("communes" if k.startswith("communes") else k): v for k, v in errors.items()}
    values = typed.values(form)
    return await _page(request, session, user, territory, values, errors, 422, typed.choices)


NONE_RUNNING = "Aucune crise n'est en cours."


async def _running(
    session: AsyncSession, user: WebUser, territoire: str | None
) -> tuple[Crisis | None, str]:
    """The crisis running in the territory (the page's actions act on it), and the page."""
    territory = await _territory(session, user, territoire)
    if territory is None:
        return None, "/coordination/crise"
    return await declaration.running_crisis(session, territory.id), _here(user, territory)


@router.post("/appels")
async def call_again(
    request: Request,
    session: SessionDep,
    user: UserDep,
    form: FormDep,
    territoire: str | None = None,
) -> Response:
    """Call the volunteers the plan gained since the declaration (nobody twice)."""
    running, here = await _running(session, user, territoire)
    if running is None:
        return done(request, here, NONE_RUNNING)
    before = (await declaration.crisis_out(session, running)).volunteers_called
    out = await declaration.call_again(
        session, user.caller, running.id, now_utc(), request.app.state.settings
    )
    added = out.volunteers_called - before
    return done(
        request,
        here,
        f"{added} nouveau(x) volontaire(s) appelé(s)"
        if added
        else "Aucun nouveau volontaire dans le plan : personne n'a été appelé deux fois.",
    )


@router.post("/fin")
async def end_crisis(
    request: Request,
    session: SessionDep,
    user: UserDep,
    form: FormDep,
    territoire: str | None = None,
) -> Response:
    """Asks first (a confirmation page), then ends the running crisis."""
    running, here = await _running(session, user, territoire)
    if running is None:
        return done(request, here, NONE_RUNNING)
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
            back=here,
        )
    out = await declaration.end(session, user.caller, running.id, now_utc())
    return done(
        request,
        here,
        f"Crise terminée : {out.slots_closed} créneau(x) de crise libre(s) fermé(s), "
        f"{out.slots_kept} réservé(s) ou en cours de réservation conservé(s).",
    )
