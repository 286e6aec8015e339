"""The territory's crisis plan (situations sanitaires exceptionnelles), by version: the
coordinator writes a new version, the ARS reads it as JSON (docs/crisis-plan.md)."""

import uuid
from typing import Any

from fastapi import APIRouter, Response

from app.api.deps import CallerDep, SessionDep
from app.clock import now_utc
from app.crisis import plan_export, plans
from app.crisis.plan_export import PlanIn, PlanOut, PlanVersionOut
from app.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page

router = APIRouter(prefix="/v1/crisis-plans", tags=["crisis"])
_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not a coordinator, admin or dashboard key (writing: not a dashboard)"},
    404: {"description": "Not found, or another territory's"},
}


@router.post("", status_code=201, response_model=PlanOut, responses=_RESPONSES)
async def write_version(
    body: PlanIn, session: SessionDep, caller: CallerDep, response: Response
) -> PlanOut:
    """Write a new version of the territory's plan (the previous version + 1): a
    coordinator its own territory's, an admin any (`territory_id`). Every volunteer must be a
    practitioner of the territory, every site's commune an INSEE code of the referential."""
    now = now_utc()
    plan = await plans.write_version(session, caller, body, body.territory_id, now)
    response.headers["Location"] = f"/v1/crisis-plans/{plan.id}"
    return await plan_export.export(session, plan, now)


@router.get("", response_model=Page[PlanVersionOut], responses=_RESPONSES)
async def list_versions(
    session: SessionDep,
    caller: CallerDep,
    territory_id: uuid.UUID | None = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[PlanVersionOut]:
    """The versions of the territory's plan, newest first (an admin names `territory_id`)."""
    territory, rows, next_cursor = await plans.list_versions(
        session, caller, territory_id, cursor, limit
    )
    return Page(
        items=[plan_export.version_out(p, territory.timezone) for p in rows],
        next_cursor=next_cursor,
    )


@router.get("/current", response_model=PlanOut, responses=_RESPONSES)
async def current(
    session: SessionDep, caller: CallerDep, territory_id: uuid.UUID | None = None
) -> PlanOut:
    """The plan in force (the highest version), resolved for the ARS; 404 when none."""
    plan = await plans.current(session, caller, territory_id)
    return await plan_export.export(session, plan, now_utc())


@router.get("/{plan_id}", response_model=PlanOut, responses=_RESPONSES)
async def get_version(plan_id: uuid.UUID, session: SessionDep, caller: CallerDep) -> PlanOut:
    """One version, resolved for the ARS: each volunteer's name, RPPS, practice and commune,
    the territory, the version, `reviewed_on`, `review_due_on` and `review_due`."""
    plan = await plans.get(session, caller, plan_id)
    return await plan_export.export(session, plan, now_utc())
