"""The coordinator's directory forms (/coordination/annuaire): create and edit a practice,
edit a GP. The forms are checked by the API's own input models and saved by the API's
directory services (same roles, same territory scoping, same RPPS uniqueness)."""

from __future__ import annotations

import uuid
from datetime import time
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.api.deps import SessionDep
from app.directory import practice_service, practitioner_service, schemas, territory_service
from app.directory.models import Practice, Practitioner
from app.errors import Conflict, ValidationFailed
from app.security import ADMIN, COORDINATOR, Caller
from app.web.auth import Form, FormDep, UserDep, WebUser, done, require_role, show
from app.web.commune_field import ListChoice, Read, caller_communes, read_communes, read_town
from app.web.forms import nested, parse, service_errors
from app.web.french import commune_label

router = APIRouter(prefix="/coordination/annuaire", include_in_schema=False)
COORDINATORS = (COORDINATOR, ADMIN)

PRACTICE_FIELDS = ("name", "address", "postal_code", "city", "commune_insee", "lat", "lon",
                   "phone", "finess", "siret", "cabinet_id", "booking_url")  # fmt: skip
PRACTITIONER_FIELDS = ("practice_id", "rpps", "family_name", "given_name", "gender",
                       "specialty", "overbooking_daily_cap", "overbooking_start_time",
                       "overbooking_end_time", "mt_capacity")  # fmt: skip
OVERBOOKING_MODALITIES = ("cabinet", "visite", "teleconsultation")


def _errors_page(
    request: Request,
    user: WebUser,
    template: str,
    values: dict[str, str],
    errors: dict[str, str],
    status: int,
    **context: Any,
) -> Response:
    return show(request, user, template, status, values=values, errors=errors,
                first_error=next(iter(errors), None), **context)  # fmt: skip


def _as_text(value: Any) -> str:
    if isinstance(value, time):
        return value.strftime("%H:%M")
    return "" if value is None else str(value)


def _modality_values(modalities: list[str] | None) -> dict[str, str]:
    """One checkbox per modality; none checked: the modalities of the GP's rules."""
    return {f"overbooking_modality_{m}": "true" for m in modalities or []}


def _checked_modalities(form: Form) -> list[str] | None:
    checked = [m for m in OVERBOOKING_MODALITIES if form.get(f"overbooking_modality_{m}")]
    return checked or None


# Practices --------------------------------------------------------------------------------


def _practice_data(form: Form, territory_id: str) -> dict[str, Any]:
    """The form as PracticeIn's input: blanks absent (so required fields are 'missing'),
    a decimal comma accepted in the coordinates."""
    data = nested(form, *PRACTICE_FIELDS)
    for name in ("lat", "lon"):
        if name in data:
            data[name] = data[name].replace(",", ".")
    return {**data, "territory_id": territory_id}


async def _practice_body(
    session: AsyncSession, caller: Caller, form: Form, territory_id: str
) -> tuple[schemas.PracticeIn | None, Read]:
    """The practice of the form, its commune typed as a name, a postal code or a code (the
    candidates of an ambiguous one to choose from), its postal code the commune's, its town
    the commune's name when left blank. The errors are the returned read's."""
    typed = await read_communes(
        session, form, ["commune_insee"], prefer=await caller_communes(session, caller)
    )
    typed = await read_town(session, typed, "postal_code", "city", "commune_insee")
    body, errors = parse(schemas.PracticeIn, _practice_data(typed.form, territory_id))
    found = typed.errors
    typed.errors = {**errors, **found}
    return (None if found else body), typed


def _shown(form: Form, read: Read) -> dict[str, str]:
    """The form as typed, with the town the commune filled in."""
    return {**read.values(form), "city": read.form.get("city")}


async def _territory_options(session: AsyncSession, user: WebUser) -> list[tuple[str, str]]:
    territories, _ = await territory_service.list_territories(
        session, user.caller, cursor=None, limit=500
    )
    return [(str(t.id), t.name) for t in territories]


async def _practice_form(
    request: Request,
    session: AsyncSession,
    user: WebUser,
    practice: Practice | None,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
    choices: dict[str, list[ListChoice]] | None = None,
) -> Response:
    return _errors_page(request, user, "practice_form.html", values, errors or {}, status,
                        practice=practice, choices=choices or {},
                        territories=await _territory_options(session, user))  # fmt: skip


@router.get("/cabinets/nouveau")
async def new_practice(request: Request, session: SessionDep, user: UserDep) -> Response:
    require_role(user, *COORDINATORS)
    return await _practice_form(request, session, user, None, {})


@router.post("/cabinets")
async def create_practice(
    request: Request, session: SessionDep, user: UserDep, form: FormDep
) -> Response:
    require_role(user, *COORDINATORS)
    territories = await _territory_options(session, user)
    territory_id = form.get("territory_id") or (territories[0][0] if len(territories) == 1 else "")
    body, read = await _practice_body(session, user.caller, form, territory_id)
    errors = read.errors
    if body is not None:
        try:
            practice = await practice_service.create_practice(session, user.caller, body)
        except ValidationFailed as exc:
            await session.rollback()
            errors = service_errors(exc)
        else:
            return done(request, f"/coordination/annuaire#cabinet-{practice.id}",
                        f"Cabinet « {practice.name} » ajouté.")  # fmt: skip
    return await _practice_form(
        request, session, user, None, _shown(form, read), errors, 422, read.choices
    )


def _practice_values(practice: Practice) -> dict[str, str]:
    """The practice in its form; the commune as people read it, "Aurillac (15014)" (the form
    takes it back as typed)."""
    values = {name: _as_text(getattr(practice, name)) for name in PRACTICE_FIELDS}
    values["commune_insee"] = commune_label(practice.commune_insee)
    return values


@router.get("/cabinets/{practice_id}")
async def practice_page(
    request: Request, session: SessionDep, user: UserDep, practice_id: uuid.UUID
) -> Response:
    require_role(user, *COORDINATORS)
    practice = await practice_service.get_practice(session, user.caller, practice_id)
    return await _practice_form(request, session, user, practice, _practice_values(practice))


@router.post("/cabinets/{practice_id}")
async def update_practice(
    request: Request, session: SessionDep, user: UserDep, form: FormDep, practice_id: uuid.UUID
) -> Response:
    """The whole form is checked as a new practice would be (a required field left blank is
    an error, not 'unchanged'); only what changed is sent to the service, and a blank
    optional field is cleared."""
    require_role(user, *COORDINATORS)
    practice = await practice_service.get_practice(session, user.caller, practice_id)
    body, read = await _practice_body(session, user.caller, form, str(practice.territory_id))
    errors = read.errors
    if body is not None:
        wanted = body.model_dump(include=set(PRACTICE_FIELDS))
        changed = {k: v for k, v in wanted.items() if getattr(practice, k) != v}
        try:
            await practice_service.update_practice(
                session, user.caller, practice.id, schemas.PracticePatch(**changed)
            )
        except ValidationFailed as exc:
            await session.rollback()
            errors = service_errors(exc)
            practice = await practice_service.get_practice(session, user.caller, practice_id)
        else:
            return done(request, f"/coordination/annuaire#cabinet-{practice.id}",
                        f"Cabinet « {practice.name} » enregistré.")  # fmt: skip
    return await _practice_form(
        request, session, user, practice, _shown(form, read), errors, 422, read.choices
    )


# Practitioners ----------------------------------------------------------------------------


def _practitioner_values(p: Practitioner) -> dict[str, str]:
    values = {name: _as_text(getattr(p, name)) for name in PRACTITIONER_FIELDS}
    values["accepts_overbooking"] = "true" if p.accepts_overbooking else ""
    values.update(_modality_values(p.overbooking_modalities))
    return values


async def _practitioner_form(
    request: Request,
    session: AsyncSession,
    user: WebUser,
    practitioner: Practitioner,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    practices, _ = await practice_service.list_practices(
        session, user.caller, territory_id=practitioner.territory_id, commune_insee=None,
        name=None, cursor=None, limit=500,
    )  # fmt: skip
    return _errors_page(request, user, "practitioner_form.html", values, errors or {}, status,
                        practitioner=practitioner,
                        practices=[(str(p.id), p.name) for p in practices])  # fmt: skip


@router.get("/medecins/{practitioner_id}")
async def practitioner_page(
    request: Request, session: SessionDep, user: UserDep, practitioner_id: uuid.UUID
) -> Response:
    require_role(user, *COORDINATORS)
    practitioner = await practitioner_service.get_practitioner(
        session, user.caller, practitioner_id
    )
    return await _practitioner_form(
        request, session, user, practitioner, _practitioner_values(practitioner)
    )


@router.post("/medecins/{practitioner_id}")
async def update_practitioner(
    request: Request,
    session: SessionDep,
    user: UserDep,
    form: FormDep,
    practitioner_id: uuid.UUID,
) -> Response:
    """Checked as PractitionerIn (every required field present); only the changes are sent
    to the service, so an unchanged MT capacity records no capacity event."""
    require_role(user, *COORDINATORS)
    practitioner = await practitioner_service.get_practitioner(
        session, user.caller, practitioner_id
    )
    data = nested(form, *PRACTITIONER_FIELDS)
    data["accepts_overbooking"] = form.get("accepts_overbooking") == "true"
    data["overbooking_modalities"] = _checked_modalities(form)
    data["profession"] = practitioner.profession
    body, errors = parse(schemas.PractitionerIn, data)
    if body is not None:
        wanted = body.model_dump(
            include={*PRACTITIONER_FIELDS, "accepts_overbooking", "overbooking_modalities"}
        )
        changed = {k: v for k, v in wanted.items() if getattr(practitioner, k) != v}
        try:
            await practitioner_service.update_practitioner(
                session, user.caller, practitioner.id, schemas.PractitionerPatch(**changed)
            )
        except Conflict:
            await session.rollback()
            errors = {"rpps": "Ce RPPS est déjà dans l'annuaire du territoire."}
        except ValidationFailed as exc:
            await session.rollback()
            errors = service_errors(exc)
        else:
            return done(request, f"/coordination/annuaire#gp-{practitioner.id}",
                        f"Dr {body.given_name} {body.family_name} enregistré(e).")  # fmt: skip
    if errors and body is not None:  # the rollback expired the GP: read it again
        practitioner = await practitioner_service.get_practitioner(
            session, user.caller, practitioner_id
        )
    values = form.values()
    values["accepts_overbooking"] = "true" if form.get("accepts_overbooking") == "true" else ""
    values.update(_modality_values(_checked_modalities(form)))
    return await _practitioner_form(request, session, user, practitioner, values, errors, 422)
