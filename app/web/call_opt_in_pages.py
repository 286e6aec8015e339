"""A GP's calls for slots, on the practice's side (/cabinet/medecins/{id}/appels): the address
the calls go to (the GP accepts them) or their end. The practice signs in (its coordinator may
open it too); another practice's GP is a 404, as in the API (app.unmet_demand.call_settings)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.api.deps import SessionDep
from app.directory.practitioner_service import get_practitioner
from app.security import COORDINATOR, PRACTICE
from app.unmet_demand import call_settings, schemas
from app.web.auth import FormDep, UserDep, WebUser, done, require_role, show
from app.web.forms import parse

router = APIRouter(prefix="/cabinet/medecins", include_in_schema=False)
BAD_EMAIL = "Adresse e-mail invalide, ex. prenom.nom@exemple.fr."


async def _page(
    request: Request,
    session: AsyncSession,
    user: WebUser,
    practitioner_id: uuid.UUID,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    require_role(user, PRACTICE, COORDINATOR)
    email = await call_settings.get_opt_in(session, user.caller, practitioner_id)
    gp = await get_practitioner(session, user.caller, practitioner_id)
    errors = errors or {}
    return show(
        request, user, "slot_call_opt_in.html", status, practitioner=gp, email=email,
        values=values if values is not None else {"email": email or ""},
        errors=errors, first_error=next(iter(errors), None),
    )  # fmt: skip


@router.get("/{practitioner_id}/appels")
async def opt_in_page(
    request: Request, session: SessionDep, user: UserDep, practitioner_id: uuid.UUID
) -> Response:
    return await _page(request, session, user, practitioner_id)


@router.post("/{practitioner_id}/appels")
async def accept_calls(
    request: Request,
    session: SessionDep,
    user: UserDep,
    form: FormDep,
    practitioner_id: uuid.UUID,
) -> Response:
    """The GP accepts calls at the address given (or changes it)."""
    require_role(user, PRACTICE, COORDINATOR)
    values = {"email": form.get("email")}
    body, errors = parse(schemas.OptInIn, values)
    if body is None:
        errors = {"email": BAD_EMAIL if values["email"] else "Ce champ est obligatoire."}
        return await _page(request, session, user, practitioner_id, values, errors, 422)
    await call_settings.set_opt_in(session, user.caller, practitioner_id, body)
    return done(
        request,
        f"/cabinet/medecins/{practitioner_id}/appels",
        f"Appels à créneaux acceptés : ils seront envoyés à {body.email}, au plus un par jour.",
    )


@router.post("/{practitioner_id}/appels/arret")
async def stop_calls(
    request: Request,
    session: SessionDep,
    user: UserDep,
    form: FormDep,
    practitioner_id: uuid.UUID,
) -> Response:
    """The GP no longer accepts calls."""
    require_role(user, PRACTICE, COORDINATOR)
    await call_settings.set_opt_in(session, user.caller, practitioner_id, None)
    return done(
        request,
        f"/cabinet/medecins/{practitioner_id}/appels",
        "Ce médecin ne recevra plus d'appels à créneaux.",
    )
