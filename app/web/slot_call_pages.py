"""The coordinator's calls for slots (/coordination/appels-creneaux): the territory's floor, the
floors of its groups of communes (added, changed, deleted after a confirmation), the GPs who
accept calls and the last 7 days' calls with the slots each produced. Every action is the
API's service (app.unmet_demand.call_settings, calls)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.api.deps import SessionDep
from app.clock import now_utc
from app.directory import communes
from app.directory.models import Practitioner, Territory
from app.errors import NotFound
from app.security import COORDINATOR
from app.unmet_demand import call_settings, calls, schemas
from app.web.auth import FormDep, UserDep, WebUser, done, require_role, show
from app.web.commune_field import (
    ListChoice,
    caller_communes,
    read_communes,
    split_list,
    with_model_errors,
)
from app.web.confirm import ask_confirmation, confirmed
from app.web.forms import parse

router = APIRouter(prefix="/coordination/appels-creneaux", include_in_schema=False)
HERE = "/coordination/appels-creneaux"
LOG_DAYS = 7
_NAME = re.compile(r"^[^/\x00-\x1f\x7f]{1,100}$")
BAD_NAME = "Un nom de 1 à 100 caractères, sans barre oblique (/)."
GROUP_FIELDS = ("name", "communes", "floor", "window_hours")


async def _log(session: AsyncSession, user: WebUser) -> list[dict[str, Any]]:
    """The last 7 days' calls, the latest first, with their GP's name."""
    end = now_utc()
    found = await calls.list_calls(session, user.caller, end - timedelta(days=LOG_DAYS), end)
    names = {
        gp.id: f"Dr {gp.given_name} {gp.family_name}"
        for gp in await session.scalars(
            select(Practitioner).where(Practitioner.id.in_({c.practitioner_id for c in found}))
        )
    }
    return [{"gp": names.get(c.practitioner_id, "?"), "call": c} for c in reversed(found)]


async def _page(
    request: Request,
    session: AsyncSession,
    user: WebUser,
    *,
    floor_values: dict[str, str] | None = None,
    group_values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    choices: dict[str, list[ListChoice]] | None = None,
    editing: str | None = None,
    status: int = 200,
) -> Response:
    territory = await session.get(Territory, calls.coordinator_territory(user.caller))
    assert territory is not None
    floor = await call_settings.get_floor(session, user.caller)
    if floor_values is None:
        floor_values = (
            {"floor": str(floor.floor), "window_hours": str(floor.window_hours)}
            if floor
            else {"window_hours": "48"}
        )
    errors = errors or {}
    return show(
        request,
        user,
        "slot_calls.html",
        status,
        tz=territory.timezone,
        floor=floor,
        areas=await call_settings.list_area_floors(session, user.caller),
        opt_ins=await call_settings.list_opt_ins(session, user.caller),
        log=await _log(session, user),
        log_days=LOG_DAYS,
        floor_values=floor_values,
        group_values=group_values or {"group.window_hours": "48"},
        errors=errors,
        choices=choices or {},
        first_error=next(iter(errors), None),
        editing=editing,
        quote=quote,
    )


@router.get("")
async def slot_calls_page(
    request: Request, session: SessionDep, user: UserDep, groupe: str | None = None
) -> Response:
    """The page; `?groupe=<name>`: the group's form filled in, to change it."""
    require_role(user, COORDINATOR)
    if groupe is None:
        return await _page(request, session, user)
    try:
        area = await call_settings.get_area_floor(session, user.caller, groupe)
    except NotFound:
        return done(request, HERE, f"Le groupe « {groupe} » n'existe plus.")
    labels = await communes.labels(session, [c.commune_insee for c in area.communes])
    values = {
        "group.name": area.name,
        "group.communes": ", ".join(labels.get(c.commune_insee, c.commune_insee)
                                    for c in area.communes),
        "group.floor": str(area.floor),
        "group.window_hours": str(area.window_hours),
    }  # fmt: skip
    return await _page(request, session, user, group_values=values, editing=area.name)


@router.post("/seuil")
async def set_floor(
    request: Request, session: SessionDep, user: UserDep, form: FormDep
) -> Response:
    require_role(user, COORDINATOR)
    values = {name: form.get(name) for name in ("floor", "window_hours")}
    body, errors = parse(schemas.FloorIn, {k: v for k, v in values.items() if v})
    if body is None:
        return await _page(request, session, user, floor_values=values, errors=errors, status=422)
    await call_settings.set_floor(session, user.caller, body)
    return done(
        request,
        HERE,
        f"Seuil du territoire enregistré : moins de {body.floor} créneau(x) SAS libre(s) "
        f"dans les {body.window_hours} heures, et les médecins volontaires sont appelés.",
    )


async def _overlaps(
    session: AsyncSession, user: WebUser, name: str, codes: list[str]
) -> str | None:
    """The communes of the form already in another group of the territory, in French."""
    taken = await call_settings.overlapping(session, user.caller, name, codes)
    if not taken:
        return None
    labels = await communes.labels(session, taken)
    return (
        "; ".join(
            f"{labels.get(code, code)} est déjà dans le groupe « {other} »"
            for code, other in taken.items()
        )
        + "."
    )


@router.post("/groupes")
async def put_group(
    request: Request, session: SessionDep, user: UserDep, form: FormDep
) -> Response:
    """Add a group of communes, or change the group of that name."""
    require_role(user, COORDINATOR)
    values = {f"group.{n}": form.get(f"group.{n}") for n in GROUP_FIELDS}
    typed = await read_communes(
        session, form, lists=["group.communes"], prefer=await caller_communes(session, user.caller)
    )
    values.update(typed.shown)
    data = {"floor": values["group.floor"], "window_hours": values["group.window_hours"]}
    codes = split_list(typed.form.get("group.communes"))
    body, errors = parse(
        schemas.AreaFloorIn, {"communes": codes, **{k: v for k, v in data.items() if v}}
    )
    errors = with_model_errors(typed, {f"group.{k.split('.')[0]}": v for k, v in errors.items()})
    name = values["group.name"].strip()
    if not name:
        errors["group.name"] = "Ce champ est obligatoire."
    elif not _NAME.match(name):
        errors["group.name"] = BAD_NAME
    if body is not None and "group.communes" not in errors:
        overlap = await _overlaps(session, user, name, codes)
        if overlap:
            errors["group.communes"] = overlap
    if body is None or errors:
        return await _page(request, session, user, group_values=values, errors=errors,
                           choices=typed.choices, editing=name or None,
                           status=422)  # fmt: skip
    area = await call_settings.put_area_floor(session, user.caller, name, body)
    return done(
        request,
        HERE,
        f"Groupe « {area.name} » enregistré : {len(area.communes)} commune(s), seuil "
        f"{area.floor} créneau(x) SAS libre(s) dans les {area.window_hours} heures.",
    )


@router.post("/groupes/{name}/supprimer")
async def delete_group(
    request: Request, session: SessionDep, user: UserDep, form: FormDep, name: str
) -> Response:
    """Asks first (a confirmation page), then deletes the group."""
    require_role(user, COORDINATOR)
    try:
        area = await call_settings.get_area_floor(session, user.caller, name)
    except NotFound:
        return done(request, HERE, f"Le groupe « {name} » n'existe plus.")
    if not confirmed(form):
        return ask_confirmation(
            request,
            user,
            title=f"Supprimer le groupe « {area.name} » ?",
            message=f"Le seuil de ses {len(area.communes)} commune(s) ne sera plus surveillé "
            "(le seuil du territoire, s'il y en a un, continue de s'appliquer). Les appels déjà "
            "envoyés restent dans le journal.",
            button="Supprimer le groupe",
            back=HERE,
        )
    await call_settings.delete_area_floor(session, user.caller, area.name)
    return done(request, HERE, f"Groupe « {area.name} » supprimé.")
