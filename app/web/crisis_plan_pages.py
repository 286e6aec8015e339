"""The coordinator's crisis plan pages (/coordination/crise/plan): the current plan, ready
to print or save as PDF (a print stylesheet), its versions, the JSON for the ARS, and the
form that writes a new version without script (app/web/crisis_plan_form.py). Every write is
the API's service (app.crisis.plans), same roles and rules."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import JSONResponse, Response

from app.api.deps import SessionDep
from app.clock import now_utc
from app.crisis import plan_export, plans
from app.crisis.models import CrisisPlan
from app.errors import Conflict, ValidationFailed
from app.security import COORDINATOR, DASHBOARD
from app.web import crisis_plan_form as plan_form
from app.web.auth import FormDep, UserDep, WebUser, done, require_role, show
from app.web.crisis_plan_reminder import plan_reminder
from app.web.render import SECURITY_HEADERS

router = APIRouter(prefix="/coordination/crise/plan", include_in_schema=False)

READERS = (COORDINATOR, DASHBOARD)
WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


async def _plan_page(
    request: Request, session: AsyncSession, user: WebUser, plan: CrisisPlan | None
) -> Response:
    now = now_utc()
    territory = await plans.territory_of(session, user.caller, None, plans.READERS, "query")
    current = await plans.current_of(session, territory.id)
    _, versions, _ = await plans.list_versions(session, user.caller, None, None, 500)
    return show(
        request, user, "crisis_plan.html",
        territory=territory,
        plan=await plan_export.export(session, plan, now) if plan else None,
        current_version=current.version if current else None,
        versions=[plan_export.version_out(v, territory.timezone) for v in versions],
        plan_reminder=await plan_reminder(session, user.caller, now),
        can_edit=user.role == COORDINATOR,
        WEEKDAYS=WEEKDAYS,
    )  # fmt: skip


@router.get("")
async def current_plan(request: Request, session: SessionDep, user: UserDep) -> Response:
    """The plan in force, readable and ready to print; the reminder when it is due."""
    require_role(user, *READERS)
    territory = await plans.territory_of(session, user.caller, None, plans.READERS, "query")
    return await _plan_page(request, session, user, await plans.current_of(session, territory.id))


@router.get("/versions/{plan_id}")
async def version_page(
    request: Request, session: SessionDep, user: UserDep, plan_id: uuid.UUID
) -> Response:
    require_role(user, *READERS)
    return await _plan_page(request, session, user, await plans.get(session, user.caller, plan_id))


@router.get("/versions/{plan_id}/plan.json")
async def version_json(session: SessionDep, user: UserDep, plan_id: uuid.UUID) -> Response:
    """The version as the API gives it to the ARS (GET /v1/crisis-plans/{id}), to download."""
    require_role(user, *READERS)
    plan = await plans.get(session, user.caller, plan_id)
    body = await plan_export.export(session, plan, now_utc())
    name = f"plan-crise-v{plan.version}.json"
    return JSONResponse(
        body.model_dump(mode="json"),
        headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
    )


# Writing a new version ----------------------------------------------------------------------


async def _form_page(
    request: Request,
    session: AsyncSession,
    user: WebUser,
    draft: plan_form.Draft,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    territory = await plans.territory_of(session, user.caller, None, plans.WRITERS, "query")
    current = await plans.current_of(session, territory.id)
    gps = await plans.practitioners(session, territory.id)
    errors = errors or {}
    first = next(iter(errors), None) or draft.focus
    return show(
        request, user, "crisis_plan_form.html", status,
        territory=territory,
        current_version=current.version if current else None,
        draft=draft,
        values=draft.values(),
        counts=draft.counts(),
        pledge_counts=draft.pledge_counts(),
        gps=[(str(g.id), f"{g.family_name} {g.given_name} — {g.practice_name}") for g in gps],
        errors=errors,
        labels={name: plan_form.label(name) for name in errors},
        first_error=first,
        WEEKDAYS=WEEKDAYS,
    )  # fmt: skip


@router.get("/modifier")
async def edit_form(request: Request, session: SessionDep, user: UserDep) -> Response:
    """The current version's rows, and blank ones, to write the next version from."""
    require_role(user, COORDINATOR)
    territory = await plans.territory_of(session, user.caller, None, plans.WRITERS, "query")
    current = await plans.current_of(session, territory.id)
    draft = plan_form.from_document(current.document) if current else plan_form.Draft()
    return await _form_page(request, session, user, draft)


@router.post("/modifier")
async def write_version(
    request: Request, session: SessionDep, user: UserDep, form: FormDep
) -> Response:
    """ "Ajouter des lignes" shows the form again with more blank rows (what was typed kept);
    "Enregistrer" writes a new version through the service."""
    require_role(user, COORDINATOR)
    draft = plan_form.read(form)
    section = form.get("ajouter")
    if section:
        plan_form.add_rows(draft, section)
        return await _form_page(request, session, user, draft)
    document, errors = plan_form.check(draft)
    if document is None:
        return await _form_page(request, session, user, draft, errors, 422)
    try:
        plan = await plans.write_version(session, user.caller, document, None, now_utc())
    except ValidationFailed as exc:
        await session.rollback()
        return await _form_page(request, session, user, draft, plan_form.refused(exc), 422)
    except Conflict:
        await session.rollback()
        message = "Une autre version vient d'être enregistrée : enregistrez de nouveau."
        return await _form_page(request, session, user, draft, {"_form": message}, 409)
    return done(request, "/coordination/crise/plan", f"Version {plan.version} du plan enregistrée.")
