"""The CPTS coordinator's directory (/coordination/annuaire: practices, GPs, the territory's
readiness for the SAS platform, a GP added) and API keys (/coordination/cles: minted, the
secret shown once, revoked). Every action is the API's directory service."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.api.deps import SessionDep
from app.directory import (
    key_service,
    practice_service,
    practitioner_service,
    readiness,
    regulator_service,
    territory_service,
)
from app.directory import schemas as directory
from app.errors import Conflict, ValidationFailed
from app.web.auth import FormDep, UserDep, WebUser, done, require_role, show
from app.web.booking_pages import caller_zone
from app.web.confirm import ask_confirmation, confirmed
from app.web.coordinator_pages import COORDINATORS
from app.web.forms import nested, parse, service_errors
from app.web.french import collation_key

router = APIRouter(prefix="/coordination", include_in_schema=False)


async def _directory_page(
    request: Request,
    session: AsyncSession,
    user: WebUser,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    practices, _ = await practice_service.list_practices(
        session, user.caller, territory_id=None, commune_insee=None, name=None,
        cursor=None, limit=500,
    )  # fmt: skip
    practitioners, _ = await practitioner_service.list_practitioners(
        session, user.caller, territory_id=None, practice_id=None, rpps=None,
        cursor=None, limit=500,
    )  # fmt: skip
    practices = sorted(practices, key=lambda p: collation_key(p.name))
    by_practice: dict[uuid.UUID, list[Any]] = {}
    for p in sorted(practitioners, key=lambda p: collation_key(f"{p.family_name} {p.given_name}")):
        by_practice.setdefault(p.practice_id, []).append(p)
    territories, _ = await territory_service.list_territories(
        session, user.caller, cursor=None, limit=500
    )
    not_ready = await readiness.reasons(session, territories)
    sas_readiness = [
        (t.name, [readiness.REASON_TEXT[r] for r in not_ready[t.id]]) for t in territories
    ]
    errors = errors or {}
    return show(request, user, "directory.html", status, practices=practices,
                by_practice=by_practice, values=values or {}, errors=errors,
                sas_readiness=sas_readiness,
                first_error=next(iter(errors), None))  # fmt: skip


@router.get("/annuaire")
async def directory_page(request: Request, session: SessionDep, user: UserDep) -> Response:
    require_role(user, *COORDINATORS)
    return await _directory_page(request, session, user)


_PRACTITIONER_FIELDS = ("practitioner.practice_id", "practitioner.rpps",
                        "practitioner.family_name", "practitioner.given_name",
                        "practitioner.gender", "practitioner.mt_capacity")  # fmt: skip


@router.post("/annuaire/medecins")
async def add_practitioner(
    request: Request, session: SessionDep, user: UserDep, form: FormDep
) -> Response:
    require_role(user, *COORDINATORS)
    data = nested(form, *_PRACTITIONER_FIELDS).get("practitioner", {})
    body, errors = parse(directory.PractitionerIn, data)
    errors = {f"practitioner.{k}": v for k, v in errors.items()}
    if body is not None:
        try:
            created = await practitioner_service.create_practitioner(session, user.caller, body)
        except (Conflict, ValidationFailed) as exc:
            await session.rollback()
            errors = (
                {"practitioner.rpps": "Ce RPPS est déjà dans l'annuaire du territoire."}
                if isinstance(exc, Conflict)
                else {f"practitioner.{k}": v for k, v in service_errors(exc).items()}
            )
        else:
            return done(request, "/coordination/annuaire",
                        f"Dr {created.given_name} {created.family_name} ajouté(e).")  # fmt: skip
    return await _directory_page(request, session, user, values=form.values(), errors=errors,
                                 status=422)  # fmt: skip


async def _keys_page(
    request: Request,
    session: AsyncSession,
    user: WebUser,
    *,
    created: tuple[Any, str] | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    keys, _ = await key_service.list_keys(
        session, user.caller, include_revoked=False, cursor=None, limit=500
    )
    practices, _ = await practice_service.list_practices(
        session, user.caller, territory_id=None, commune_insee=None, name=None,
        cursor=None, limit=500,
    )  # fmt: skip
    regulators, _ = await regulator_service.list_regulators(
        session, user.caller, cursor=None, limit=500
    )
    roles = await key_service.creator_roles(session, keys)
    by_admin = {k.id for k in keys if k.created_by is None or roles[k.id] == "admin"}
    errors = errors or {}
    return show(request, user, "keys.html", status, keys=keys, created=created, by_admin=by_admin,
                tz=await caller_zone(session, user.caller),
                practice_options=[(str(p.id), p.name) for p in practices],
                regulator_options=[(str(r.id), r.name) for r in regulators],
                values=values or {"role": "practice"}, errors=errors,
                first_error=next(iter(errors), None))  # fmt: skip


@router.get("/cles")
async def keys_page(request: Request, session: SessionDep, user: UserDep) -> Response:
    require_role(user, *COORDINATORS)
    return await _keys_page(request, session, user)


@router.post("/cles")
async def create_key(
    request: Request, session: SessionDep, user: UserDep, form: FormDep
) -> Response:
    """Create a key; its secret is shown on this answer only (never stored in clear)."""
    require_role(user, *COORDINATORS)
    role = form.get("role")
    scope = {"practice": "practice_id", "regulator": "regulator_id"}.get(role)
    data = nested(form, "role", "name", *((scope,) if scope else ()))
    body, errors = parse(directory.KeyIn, data)
    if body is not None:
        try:
            key, secret = await key_service.create_key(session, user.caller, body)
        except ValidationFailed as exc:
            await session.rollback()
            errors = service_errors(exc)
        else:
            return await _keys_page(request, session, user, created=(key, secret))
    return await _keys_page(request, session, user, values=form.values(), errors=errors,
                            status=422)  # fmt: skip


@router.post("/cles/{key_id}/revoquer")
async def revoke_key(
    request: Request, session: SessionDep, user: UserDep, form: FormDep, key_id: uuid.UUID
) -> Response:
    require_role(user, *COORDINATORS)
    if not confirmed(form):
        key = await key_service.get_key(session, user.caller, key_id)
        return ask_confirmation(
            request,
            user,
            title=f"Révoquer la clé « {key.name} » ?",
            message="Elle cessera de fonctionner aussitôt, pour l'API comme pour les pages ; "
            "les sessions ouvertes avec elle prennent fin. Une clé révoquée ne peut pas être "
            "rétablie : il faudra en créer une nouvelle.",
            button="Révoquer la clé",
            back="/coordination/cles",
        )
    await key_service.revoke_key(session, user.caller, key_id)
    return done(request, "/coordination/cles", "Clé révoquée : elle ne fonctionne plus.")
