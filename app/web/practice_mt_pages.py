"""The practice's médecin traitant page (/cabinet/medecin-traitant): the patients the CPTS
proposed to one of its GPs, to accept or decline as the API lets a practice do (only for its
own GPs, only while proposed), and the patients already attached to them. Every request shown
with its patient is written to the access log."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.activity.audit import log_shown
from app.api.deps import SessionDep
from app.directory.territory_service import territory_zones
from app.errors import Conflict, ValidationFailed
from app.medecin_traitant import schemas, service, transitions
from app.security import PRACTICE
from app.web.auth import FormDep, UserDep, WebUser, done, require_role, show
from app.web.coordinator_pages import MT_CONFLICTS
from app.web.forms import nested, parse

router = APIRouter(prefix="/cabinet/medecin-traitant", include_in_schema=False)
HOME = "/cabinet/medecin-traitant"


async def _page(
    request: Request,
    session: AsyncSession,
    user: WebUser,
    *,
    failed: uuid.UUID | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    items = []
    for wanted in ("proposed", "attached"):
        views, _ = await service.list_requests(
            session, user.caller, status=wanted, priority=None, cursor=None, limit=500
        )
        items.append([service.render(v) for v in views])
    proposed, attached = items
    await log_shown(session, user.caller, "mt_request", proposed + attached, "list")
    zones = await territory_zones(session, {r.territory_id for r in proposed + attached})
    errors = errors or {}
    return show(request, user, "mt_practice.html", status, proposed=proposed,
                attached=attached, zones=zones, failed=failed, errors=errors,
                first_error=next(iter(errors), None))  # fmt: skip


@router.get("")
async def proposals(request: Request, session: SessionDep, user: UserDep) -> Response:
    require_role(user, PRACTICE)
    return await _page(request, session, user)


async def _answer(
    request: Request,
    session: AsyncSession,
    user: WebUser,
    request_id: uuid.UUID,
    kind: str,
    reason: schemas.ReasonIn | None = None,
) -> Response:
    try:
        if kind == "accept":
            view = await transitions.accept(session, user.caller, request_id)
        else:
            assert reason is not None
            view = await transitions.decline(session, user.caller, request_id, reason)
    except (Conflict, ValidationFailed) as exc:
        await session.rollback()
        message = MT_CONFLICTS.get(exc.detail, "Action impossible : la proposition a changé.")
        return await _page(request, session, user, failed=request_id,
                           errors={"_form": message}, status=exc.status)  # fmt: skip
    if view.attached is not None:
        return done(request, HOME, f"Patient rattaché au Dr {view.attached.family_name}.")
    return done(request, HOME, "Proposition refusée : la CPTS proposera un autre médecin.")


@router.post("/{request_id}/accepter")
async def accept(
    request: Request, session: SessionDep, user: UserDep, form: FormDep, request_id: uuid.UUID
) -> Response:
    require_role(user, PRACTICE)
    return await _answer(request, session, user, request_id, "accept")


@router.post("/{request_id}/refuser")
async def decline(
    request: Request, session: SessionDep, user: UserDep, form: FormDep, request_id: uuid.UUID
) -> Response:
    require_role(user, PRACTICE)
    body, _ = parse(schemas.DeclineIn, nested(form, "reason", "reason_code"))
    if body is None:
        return await _page(request, session, user, failed=request_id,
                           errors={"reason": "Indiquez le motif du refus."},
                           status=422)  # fmt: skip
    return await _answer(request, session, user, request_id, "decline", body)
