"""The CPTS coordinator's pages (/coordination): the médecin traitant queue in priority order,
a request's candidates and its transitions, and the GPs' capacities. Every action is the API's
service (same roles, same rules); every MT request shown with its patient is written to the
access log. The directory's and the API keys' pages are coordinator_directory_pages.py."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.activity.audit import log_shown
from app.api.deps import SessionDep
from app.clock import now_utc
from app.directory import practitioner_service, territory_service
from app.directory import schemas as directory
from app.errors import Conflict, ValidationFailed
from app.idempotency import idempotent
from app.medecin_traitant import capacity, history, schemas, self_registration, service, transitions
from app.security import ADMIN, COORDINATOR
from app.web.auth import Form, FormDep, UserDep, WebUser, done, require_role, show
from app.web.commune_field import ListChoice, caller_communes, read_communes, with_model_errors
from app.web.crisis_plan_reminder import plan_reminder
from app.web.forms import PATIENT_FIELDS, nested, parse, service_errors
from app.web.french import count_of

router = APIRouter(prefix="/coordination", include_in_schema=False)


COORDINATORS = (COORDINATOR, ADMIN)


ACTIVE = "en-cours"  # the queue's default filter: waiting and proposed


@router.get("")
async def queue(
    request: Request,
    session: SessionDep,
    user: UserDep,
    statut: str = ACTIVE,
    priorite: str = "",
) -> Response:
    """Fragile patients first (more criteria first), then the longest waiting. By default the
    requests still to be handled: waiting, or proposed to a GP and awaiting an answer."""
    require_role(user, *COORDINATORS)
    status = statut if statut in ("waiting", "proposed", "attached", "withdrawn") else None
    priority = int(priorite) if priorite in ("0", "1", "2", "3") else None
    views, _ = await service.list_requests(
        session, user.caller, status=status, priority=priority, cursor=None, limit=500,
        statuses=("waiting", "proposed") if statut == ACTIVE else None,
    )  # fmt: skip
    items = [service.render(v) for v in views]
    await log_shown(session, user.caller, "mt_request", items, "list")
    reminder = await plan_reminder(session, user.caller, now_utc())
    return show(request, user, "mt_queue.html", items=items, status_filter=statut,
                priority=priorite, plan_reminder=reminder)  # fmt: skip


_MT_FIELDS = (*PATIENT_FIELDS, "source", "preferences.practitioner_gender")


def _register_data(form: Form) -> dict[str, Any]:
    data = nested(form, *_MT_FIELDS)
    data["ald"] = form.get("ald") == "true"
    data["precarity"] = form.get("precarity") == "true"
    communes = [c for c in re.split(r"[\s,;]+", form.get("preferences.communes_insee")) if c]
    if communes:
        data.setdefault("preferences", {})["communes_insee"] = communes
    return data


def _register_page(
    request: Request,
    user: WebUser,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
    choices: dict[str, list[ListChoice]] | None = None,
) -> Response:
    errors = errors or {}
    values.setdefault("jeton", str(uuid.uuid4()))
    return show(request, user, "mt_new.html", status, values=values, errors=errors,
                first_error=next(iter(errors), None), choices=choices or {})  # fmt: skip


@router.get("/mt/nouvelle")
async def new_request(request: Request, user: UserDep) -> Response:
    require_role(user, *COORDINATORS)
    return _register_page(request, user, {"source": "cpts"})


@router.post("/mt/nouvelle")
async def register(request: Request, session: SessionDep, user: UserDep, form: FormDep) -> Response:
    """Register a patient looking for a médecin traitant (idempotent on the form's token)."""
    require_role(user, *COORDINATORS)
    typed = await read_communes(
        session, form, ["patient.commune_insee"], lists=["preferences.communes_insee"],
        prefer=await caller_communes(session, user.caller),
    )  # fmt: skip
    body, errors = parse(schemas.MtRequestIn, _register_data(typed.form))
    errors = with_model_errors(typed, errors)
    values = typed.values(form)
    if body is None or typed.errors:
        return _register_page(request, user, values, errors, 422, typed.choices)

    async def run() -> schemas.MtRequestOut:
        return service.render(await service.register(session, user.caller, body))

    try:
        response = await idempotent(
            session, user.caller, form.get("jeton"), "POST /v1/mt-requests", body, run
        )
    except Conflict as exc:
        await session.rollback()
        existing = exc.extra.get("existing_id")
        message = "Ce patient est déjà inscrit dans la file du territoire."
        if existing:
            return done(request, f"/coordination/mt/{existing}", message)
        return _register_page(request, user, values, {"_form": message}, 409)
    except ValidationFailed as exc:
        await session.rollback()
        values.pop("jeton", None)
        return _register_page(request, user, values, service_errors(exc), 422)
    request_id = json.loads(bytes(response.body))["id"]
    return done(request, f"/coordination/mt/{request_id}", "Patient inscrit dans la file.")


async def _request_page(
    request: Request,
    session: AsyncSession,
    user: WebUser,
    request_id: uuid.UUID,
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    item = service.render(await service.get(session, user.caller, request_id))
    await log_shown(session, user.caller, "mt_request", [item], "read")
    candidates = (
        await capacity.candidates(session, user.caller, request_id)
        if item.status == "waiting"
        else []
    )
    errors = errors or {}
    zones = await territory_service.territory_zones(session, {item.territory_id})
    proposals = await history.of_request(session, request_id)
    return show(request, user, "mt_request.html", status, r=item, candidates=candidates,
                proposals=proposals,
                tz=zones[item.territory_id], errors=errors,
                first_error=next(iter(errors), None))  # fmt: skip


@router.get("/mt/{request_id}")
async def request_page(
    request: Request, session: SessionDep, user: UserDep, request_id: uuid.UUID
) -> Response:
    require_role(user, *COORDINATORS)
    return await _request_page(request, session, user, request_id)


async def _transition(
    request: Request,
    session: AsyncSession,
    user: WebUser,
    request_id: uuid.UUID,
    action: Any,
    message: str,
) -> Response:
    try:
        await action
    except (Conflict, ValidationFailed) as exc:
        await session.rollback()
        return await _request_page(
            request, session, user, request_id,
            errors={"_form": MT_CONFLICTS.get(exc.detail, "Action impossible : " + exc.detail)},
            status=exc.status,
        )  # fmt: skip
    return done(request, f"/coordination/mt/{request_id}", message)


_NO_PLACE = "Ce médecin n'a plus de place de médecin traitant."


MT_CONFLICTS = {
    "This GP takes no new médecin traitant patients (capacity reached)": _NO_PLACE,
    "This GP has no médecin traitant place left": _NO_PLACE,
    "The proposal has lapsed; propose again": "La proposition a expiré : proposez de nouveau.",
    "The criteria of this request are already confirmed": "Les critères sont déjà confirmés.",
}


@router.post("/mt/{request_id}/criteres")
async def confirm_criteria(
    request: Request, session: SessionDep, user: UserDep, form: FormDep, request_id: uuid.UUID
) -> Response:
    """The criteria a patient declared on the public page, checked (and corrected if need be)
    by the coordinator: from now on they count for priority."""
    require_role(user, *COORDINATORS)
    body = self_registration.CriteriaIn(
        ald=form.get("ald") == "true", precarity=form.get("precarity") == "true"
    )
    return await _transition(request, session, user, request_id,
                             self_registration.confirm_criteria(session, user.caller, request_id,
                                                                body),
                             "Critères confirmés : ils comptent pour la priorité.")  # fmt: skip


@router.post("/mt/{request_id}/proposer")
async def propose(
    request: Request, session: SessionDep, user: UserDep, form: FormDep, request_id: uuid.UUID
) -> Response:
    require_role(user, *COORDINATORS)
    body, errors = parse(schemas.ProposalIn, nested(form, "practitioner_id"))
    if body is None:
        return await _request_page(request, session, user, request_id, errors=errors, status=422)
    return await _transition(request, session, user, request_id,
                             transitions.propose(session, user.caller, request_id, body),
                             "Médecin proposé au patient.")  # fmt: skip


@router.post("/mt/{request_id}/accepter")
async def accept(
    request: Request, session: SessionDep, user: UserDep, form: FormDep, request_id: uuid.UUID
) -> Response:
    require_role(user, *COORDINATORS)
    return await _transition(request, session, user, request_id,
                             transitions.accept(session, user.caller, request_id),
                             "Patient rattaché à son médecin traitant.")  # fmt: skip


async def _with_reason(
    request: Request,
    session: AsyncSession,
    user: WebUser,
    form: Form,
    request_id: uuid.UUID,
    kind: str,
) -> Response:
    model = schemas.DeclineIn if kind == "decline" else schemas.ReasonIn
    fields = ("reason", "declined_by", "reason_code") if kind == "decline" else ("reason",)
    body, errors = parse(model, nested(form, *fields))
    if body is None:
        errors = {f"{kind}.reason": errors.get("reason", "Ce champ est obligatoire.")}
        return await _request_page(request, session, user, request_id, errors=errors, status=422)
    if kind == "decline":
        return await _transition(request, session, user, request_id,
                                 transitions.decline(session, user.caller, request_id, body),
                                 "Proposition refusée : le patient garde sa place.")  # fmt: skip
    return await _transition(request, session, user, request_id,
                             transitions.withdraw(session, user.caller, request_id, body),
                             "Patient sorti de la file.")  # fmt: skip


@router.post("/mt/{request_id}/refuser")
async def decline(
    request: Request, session: SessionDep, user: UserDep, form: FormDep, request_id: uuid.UUID
) -> Response:
    require_role(user, *COORDINATORS)
    return await _with_reason(request, session, user, form, request_id, "decline")


@router.post("/mt/{request_id}/retirer")
async def withdraw(
    request: Request, session: SessionDep, user: UserDep, form: FormDep, request_id: uuid.UUID
) -> Response:
    require_role(user, *COORDINATORS)
    return await _with_reason(request, session, user, form, request_id, "withdraw")


@router.get("/capacites")
async def capacities(request: Request, session: SessionDep, user: UserDep) -> Response:
    require_role(user, *COORDINATORS)
    rows = await capacity.capacities(session, user.caller)
    return show(request, user, "capacities.html", rows=rows)


@router.post("/capacites/{practitioner_id}")
async def set_capacity(
    request: Request, session: SessionDep, user: UserDep, form: FormDep, practitioner_id: uuid.UUID
) -> Response:
    require_role(user, *COORDINATORS)
    body, _ = parse(directory.MtCapacityIn, {"mt_capacity": form.get("mt_capacity")})
    if body is None:
        return done(request, "/coordination/capacites",
                    "Capacité refusée : un nombre entier entre 0 et 5000.")  # fmt: skip
    practitioner = await practitioner_service.set_mt_capacity(
        session, user.caller, practitioner_id, body.mt_capacity
    )
    return done(
        request,
        f"/coordination/capacites#gp-{practitioner.id}",
        f"Capacité du Dr {practitioner.family_name} : "
        f"{count_of(practitioner.mt_capacity, 'patient')}.",
    )
