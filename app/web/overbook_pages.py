"""The regulator's surnuméraire bookings (/regulation/surnumeraire): a consultation beyond
the published slots with a GP who accepts them (the service of `POST /v1/bookings/overbook`),
in the GP's local time, idempotent on the form's one-time token like a slot booking; each
refusal (daily cap, modality, hours, absence, SNP window) said in French, the patient kept."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.api.deps import SessionDep
from app.directory import communes as communes_ref
from app.directory.practice_service import list_practices
from app.directory.practitioner_service import get_practitioner, list_practitioners
from app.directory.territory_service import territory_zones
from app.errors import Conflict, NotFound, ValidationFailed
from app.idempotency import idempotent
from app.scheduling import booking_views, overbooking
from app.scheduling.booking_schemas import BookingOut, OverbookIn
from app.security import REGULATOR
from app.web.auth import FormDep, UserDep, WebUser, done, require_role, show
from app.web.commune_field import caller_communes, read_communes
from app.web.forms import PATIENT_FIELDS, local_datetime, nested, parse, service_errors
from app.web.french import collation_key
from app.web.render import day

router = APIRouter(prefix="/regulation/surnumeraire", include_in_schema=False)


async def _overbook_gps(session: AsyncSession, user: WebUser) -> list[tuple[str, str]]:
    """The GPs of the regulator's territories who accept surnuméraire patients, by name, each
    with their practice and its town (a regulator chooses by place as much as by name)."""
    gps, _ = await list_practitioners(
        session, user.caller, territory_id=None, practice_id=None, rpps=None,
        cursor=None, limit=1000,
    )  # fmt: skip
    practices, _ = await list_practices(
        session, user.caller, territory_id=None, commune_insee=None, name=None,
        cursor=None, limit=1000,
    )  # fmt: skip
    by_id = {p.id: p for p in practices}
    towns = await communes_ref.names(session, {p.commune_insee for p in practices})
    accepting = sorted(
        (p for p in gps if p.accepts_overbooking),
        key=lambda p: (collation_key(p.family_name), collation_key(p.given_name)),
    )
    options = []
    for p in accepting:
        practice = by_id.get(p.practice_id)
        where = ""
        if practice is not None:
            town = practice.city or towns.get(practice.commune_insee, practice.commune_insee)
            where = f", {practice.name} ({town})"
        options.append(
            (
                str(p.id),
                f"Dr {p.family_name} {p.given_name}{where} — "
                f"{p.overbooking_daily_cap} par jour au plus",
            )
        )
    return options


async def _overbook_page(
    request: Request,
    session: AsyncSession,
    user: WebUser,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
    choices: dict[str, list[Any]] | None = None,
) -> Response:
    options = await _overbook_gps(session, user)
    errors = errors or {}
    values.setdefault("jeton", str(uuid.uuid4()))
    return show(request, user, "overbook.html", status, gps=options, values=values,
                errors=errors, first_error=next(iter(errors), None),
                choices=choices or {})  # fmt: skip


@router.get("")
async def overbook_form(
    request: Request, session: SessionDep, user: UserDep, medecin: str = ""
) -> Response:
    require_role(user, REGULATOR)
    return await _overbook_page(
        request, session, user, {"practitioner_id": medecin, "modality": "cabinet"}
    )


_MODALITY_WORDS = {
    "cabinet": "au cabinet",
    "visite": "en visite à domicile",
    "teleconsultation": "en téléconsultation",
}
_KEPT = " Les informations du patient sont conservées."


def _cap_message(error: Conflict, name: str) -> str:
    """The service's 409s in French, from the problem's `refusal` code and its details: the
    GP's daily cap reached, a modality, hours or an absence that refuse it, or no
    surnuméraire at all."""
    extra = error.extra
    refusal = extra.get("refusal")
    if refusal == "daily_cap":
        when = day(date.fromisoformat(extra["day"]), "EEEE d MMMM y")
        return (
            f"Le Dr {name} a déjà atteint son maximum de {extra['cap']} rendez-vous "
            f"surnuméraire(s) le {when}. Choisissez un autre médecin ou un autre jour : "
            "les informations du patient sont conservées."
        )
    if refusal == "modality":
        accepted = ", ".join(_MODALITY_WORDS.get(m, m) for m in extra["accepted"])
        return (
            f"Le Dr {name} ne reçoit pas de surnuméraire "
            f"{_MODALITY_WORDS.get(extra['modality'], extra['modality'])} "
            f"(seulement {accepted}).{_KEPT}"
        )
    if refusal == "hours":
        return (
            f"Le Dr {name} reçoit les surnuméraires de {extra['hours_start']} à "
            f"{extra['hours_end']} (heure locale) : choisissez une heure dans ces horaires."
            f"{_KEPT}"
        )
    if refusal == "unavailable":
        start = datetime.fromisoformat(extra["unavailable_from"])
        end = datetime.fromisoformat(extra["unavailable_until"])
        return (
            f"Le Dr {name} est absent du {day(start.date(), 'd MMMM y')} à {start:%H:%M} "
            f"au {day(end.date(), 'd MMMM y')} à {end:%H:%M}.{_KEPT}"
        )
    return f"Le Dr {name} n'accepte pas de patients en surnuméraire."


def _window_message(error: ValidationFailed) -> str | None:
    if error.extra.get("refusal") != "snp_window":
        return None
    hours = error.extra["window_hours"]
    return (
        f"Un surnuméraire se prend dans les {hours} heures qui viennent (soins non "
        "programmés) : choisissez une date plus proche."
    )


@router.post("")
async def overbook(request: Request, session: SessionDep, user: UserDep, form: FormDep) -> Response:
    """A consultation beyond the published slots, within the GP's daily cap, idempotent on the
    form's one-time token like a slot booking."""
    require_role(user, REGULATOR)
    values = form.values()
    mine = await caller_communes(session, user.caller)
    typed = await read_communes(session, form, ["patient.commune_insee"], prefer=mine)
    data = nested(typed.form, "practitioner_id", "modality", "sas_case_ref", "reason",
                  "visit_address", *PATIENT_FIELDS)  # fmt: skip
    gp = None
    with contextlib.suppress(ValueError, NotFound):  # the model says what is wrong with it
        gp = await get_practitioner(session, user.caller, uuid.UUID(form.get("practitioner_id")))
    if form.get("start"):
        tz = ZoneInfo((await territory_zones(session, {gp.territory_id}))[gp.territory_id]
                      if gp else "Europe/Paris")  # fmt: skip
        data["start"] = local_datetime(form.get("start"), tz)
    body, errors = parse(OverbookIn, data)
    errors.update(typed.errors)
    if "practitioner_id" in errors:
        errors["practitioner_id"] = "Choisissez un médecin dans la liste."
    if not re.fullmatch(r"[0-9a-f-]{36}", form.get("jeton")):
        errors["_form"] = "Le formulaire est incomplet : rechargez la page."
    if body is None or errors:
        shown = typed.values(form)
        return await _overbook_page(request, session, user, shown, errors, 422, typed.choices)
    name = gp.family_name if gp else ""

    async def run() -> BookingOut:
        return booking_views.render(await overbooking.overbook(session, user.caller, body))

    try:
        response = await idempotent(
            session, user.caller, form.get("jeton"), "POST /v1/bookings/overbook", body, run
        )
    except Conflict as exc:
        await session.rollback()
        values["jeton"] = str(uuid.uuid4())
        return await _overbook_page(
            request, session, user, values, {"_form": _cap_message(exc, name)}, 409
        )
    except ValidationFailed as exc:
        await session.rollback()
        errors = service_errors(exc)
        window = _window_message(exc)
        if window is not None:
            errors = {"start": window}
        if any(loc.startswith("header") for loc in errors):  # the token served another
            errors = {"_form": "Ce formulaire a déjà servi (voir « Mes réservations »)."}
            values.pop("jeton", None)
        return await _overbook_page(request, session, user, values, errors, 422)
    booking_id = json.loads(bytes(response.body))["id"]
    return done(request, f"/rendez-vous/{booking_id}", "Rendez-vous surnuméraire réservé.")
