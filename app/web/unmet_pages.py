"""Unmet SNP demand on the regulator's pages: the small form under a search that found
nothing or nothing suitable (/regulation/carence), and the count of empty searches. The
request goes through the API's service, idempotent on the form's one-time token."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.api.deps import SessionDep
from app.clock import now_utc
from app.errors import Forbidden, ValidationFailed
from app.idempotency import idempotent
from app.security import REGULATOR
from app.unmet_demand import service
from app.unmet_demand.schemas import UnmetRequestIn, UnmetRequestOut
from app.web.auth import FormDep, UserDep, WebUser, done, require_role, show
from app.web.commune_field import ListChoice, caller_communes, read_communes
from app.web.forms import parse, service_errors

router = APIRouter(prefix="/regulation/carence", include_in_schema=False)

REASONS = {
    "no_slot": "Aucun créneau",
    "no_suitable_slot": "Aucun créneau adapté",
    "too_far": "Trop loin",
    "too_late": "Trop tard (délai souhaité dépassé)",
    "modality_unavailable": "Modalité indisponible",
    "patient_refused": "Refus du patient",
    "other": "Autre",
}
CRITERIA = ("commune", "point", "rayon", "modalite")
# The form's fields, named apart from the booking form's on the same page.
_FIELDS = {
    "reason": "motif",
    "wanted_within_hours": "delai",
    "sas_case_ref": "dossier",
    "commune_insee": "commune",
    "near": "point",
    "modality": "modalite",
    "territory_id": "_form",
}
_POINT = re.compile(r"^\s*(-?\d{1,2}(?:\.\d+)?)\s*[,; ]\s*(-?\d{1,3}(?:\.\d+)?)\s*$")


def unmet_form(criteria: dict[str, str], found_nothing: bool) -> dict[str, str]:
    """The form's values, pre-filled from the search: its place and modality, the reason
    that fits (nothing found, or nothing suitable) and a fresh one-time token."""
    values = {name: criteria.get(name, "") for name in CRITERIA}
    values["motif"] = "no_slot" if found_nothing else "no_suitable_slot"
    values["delai"] = "48"
    values["jeton"] = str(uuid.uuid4())
    return values


def _point(text: str) -> dict[str, float] | str:
    match = _POINT.match(text)
    if match is None:
        return text  # the model says it is not a point
    return {"lat": float(match.group(1)), "lon": float(match.group(2))}


def _body(values: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {"reason": values.get("motif", "")}
    if values.get("point"):
        data["near"] = _point(values["point"])
    elif values.get("commune"):
        data["commune_insee"] = values["commune"]
    if values.get("modalite"):
        data["modality"] = values["modalite"]
    if values.get("delai"):
        data["wanted_within_hours"] = values["delai"]
    if values.get("dossier"):
        data["sas_case_ref"] = values["dossier"]
    return data


def _errors(errors: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for loc, message in errors.items():
        name = _FIELDS.get(loc.split(".")[0], "_form")
        if loc == "_form" and "commune_insee" in message.lower():
            message = "Indiquez la commune ou le point du patient (refaites la recherche)."
        out.setdefault(name, message)
    return out


def _page(
    request: Request,
    user: WebUser,
    values: dict[str, str],
    errors: dict[str, str],
    status: int,
    choices: dict[str, list[ListChoice]] | None = None,
) -> Response:
    return show(request, user, "unmet.html", status, unmet=values, unmet_errors=errors,
                reasons=REASONS, first_error=next(iter(errors), None),
                choices=choices or {})  # fmt: skip


@router.get("")
async def unmet_page(
    request: Request,
    user: UserDep,
    commune: str = "",
    point: str = "",
    rayon: str = "",
    modalite: str = "",
) -> Response:
    require_role(user, REGULATOR)
    criteria = {"commune": commune, "point": point, "rayon": rayon, "modalite": modalite}
    return _page(request, user, unmet_form(criteria, True), {}, 200)


@router.post("")
async def record_unmet(
    request: Request, session: SessionDep, user: UserDep, form: FormDep
) -> Response:
    """Record the request that could not be placed, then back to the same search."""
    require_role(user, REGULATOR)
    values = form.values()
    mine = await caller_communes(session, user.caller)
    typed = await read_communes(session, form, ["commune"], prefer=mine)
    body, errors = parse(UnmetRequestIn, _body(typed.form.values()))
    errors = {**_errors(errors), **typed.errors}
    token = values.get("jeton", "")
    if not re.fullmatch(r"[0-9a-f-]{36}", token):
        errors["_form"] = "Le formulaire est incomplet : rechargez la page."
    if body is None or errors:
        return _page(request, user, typed.values(form), errors, 422, typed.choices)

    async def run() -> UnmetRequestOut:
        return service.render(await service.record(session, user.caller, body, now_utc()))

    try:
        await idempotent(session, user.caller, token, "POST /v1/unmet-requests", body, run)
    except ValidationFailed as exc:
        await session.rollback()
        errors = _errors(service_errors(exc))
        if any(loc.startswith("header") for loc in service_errors(exc)):
            errors = {"_form": "Ce formulaire a déjà servi : rechargez la recherche."}
        elif "_form" in errors:
            errors["_form"] = (
                "Votre SAS sert plusieurs territoires qui comptent cette commune : "
                "précisez le lieu par un point."
            )
        values["jeton"] = str(uuid.uuid4())
        return _page(request, user, values, errors, 422)
    except Forbidden:
        await session.rollback()
        values["jeton"] = str(uuid.uuid4())
        errors = {"_form": "Ce lieu n'est dans aucun des territoires que votre SAS sert."}
        return _page(request, user, values, errors, 403)
    back = urlencode({name: values.get(name, "") for name in CRITERIA})
    return done(
        request,
        f"/regulation?{back}",
        "Demande non satisfaite enregistrée : elle compte dans le diagnostic des carences.",
    )


async def count_empty_search(
    session: AsyncSession, user: WebUser, commune_insee: str | None, point: str, modality: str
) -> None:
    """The search page's hook: a first page of results that is empty counts once per
    regulator, commune and half hour."""
    near = _point(point) if point else None
    await service.count_empty_search(
        session,
        user.caller,
        commune_insee=commune_insee or None,
        near=(near["lat"], near["lon"]) if isinstance(near, dict) else None,
        modality=modality or None,
        now=now_utc(),
    )
