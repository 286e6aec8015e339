"""The SAS regulator's page (/regulation): search the next 48 hours around a commune or a
point, then book with the patient's details in the same page. Search and booking are the
API's services (same availability predicate, same rules); a booking is idempotent on the
form's one-time token, so a double submission books once."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.api.deps import SessionDep
from app.directory import communes as communes_ref
from app.directory.practice_service import Commune, communes, list_practices
from app.directory.practitioner_service import get_practitioner, list_practitioners
from app.directory.territory_service import territory_zones
from app.errors import AppError, Conflict, NotFound, SlotUnavailable, ValidationFailed
from app.idempotency import idempotent
from app.scheduling import booking_creation, booking_views, overbooking
from app.scheduling import search as slot_search
from app.scheduling.booking_schemas import BookingOut, OverbookIn
from app.security import REGULATOR
from app.web import unmet_pages
from app.web.auth import Form, FormDep, UserDep, WebUser, done, require_role, show
from app.web.commune_field import caller_communes, read_communes
from app.web.commune_search import locate
from app.web.crisis_banner import running_crises
from app.web.forms import (
    PATIENT_FIELDS,
    booking_form,
    local_datetime,
    nested,
    not_booked,
    parse,
    service_errors,
)
from app.web.french import collation_key
from app.web.render import day

router = APIRouter(prefix="/regulation", include_in_schema=False)

RADII = [("5", "5 km"), ("10", "10 km"), ("20", "20 km"), ("30", "30 km"), ("50", "50 km"),
         ("100", "100 km"), ("commune", "Dans la commune seulement")]  # fmt: skip
DEFAULT_RADIUS = "30"
_POINT = re.compile(r"^\s*(-?\d{1,2}(?:\.\d+)?)\s*[,; ]\s*(-?\d{1,3}(?:\.\d+)?)\s*$")
SEARCH_FIELDS = ("commune", "point", "rayon", "modalite")


@dataclass
class Search:
    """The search criteria as typed, their errors, and the results."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    results: list[Any] = field(default_factory=list)
    next_cursor: str | None = None
    searched: bool = False
    origin: str | None = None
    commune_insee: str | None = None  # the one commune searched around, when it is one
    centre: tuple[float, float] | None = None  # where a commune or a postal code is
    choices: list[Any] = field(default_factory=list)  # the communes an ambiguous value means


def _point(text: str) -> tuple[float, float] | None:
    match = _POINT.match(text)
    if match is None:
        return None
    lat, lon = float(match.group(1)), float(match.group(2))
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon


async def run_search(
    session: AsyncSession,
    user: WebUser,
    values: dict[str, str],
    known: dict[str, Commune],
    cursor: str | None = None,
    *,
    bookable_only: bool = False,
) -> Search:
    """Criteria to the API's search: a commune typed by name, postal code or INSEE code
    (app/web/commune_search.py: its centre, as the directory places it) or a point, a radius
    (or the commune only) and a modality. `bookable_only`: only the slots the caller may book
    itself (the CPTS's page: its own and public slots, not the SAS's)."""
    found = Search(values={k: values.get(k, "") for k in SEARCH_FIELDS})
    found.values["rayon"] = found.values["rayon"] or DEFAULT_RADIUS
    v = found.values
    near: tuple[float, float] | None = None
    commune_insee: str | None = None
    radius: float | None = None
    if v["point"]:
        near = _point(v["point"])
        if near is None:
            found.errors["point"] = (
                "Point invalide : latitude et longitude en degrés décimaux, ex. 44.9264, 2.4396."
            )
        elif v["rayon"] == "commune":
            found.errors["rayon"] = "Autour d'un point, choisissez un rayon en kilomètres."
        found.origin = f"du point {v['point']}"
    elif v["commune"]:
        place = await locate(session, v["commune"], known, commune_only=v["rayon"] == "commune")
        v["commune"], found.choices, near = place.shown, place.choices, place.near
        found.origin, found.commune_insee, found.centre = place.origin, place.insee, near
        if place.error is not None:
            found.errors["commune"] = place.error
        elif v["rayon"] == "commune":
            commune_insee = place.insee
            found.origin = found.origin if near is not None else None  # no distance then
    if v["rayon"] not in dict(RADII):
        found.errors["rayon"] = "Choisissez un des rayons proposés."
    elif v["rayon"] != "commune" and near is not None:
        radius = float(v["rayon"])
    if v["modalite"] and v["modalite"] not in ("cabinet", "visite", "teleconsultation"):
        found.errors["modalite"] = "Choisissez une des modalités proposées."
    if found.errors:
        return found
    try:
        rows, next_cursor = await slot_search.search(
            session,
            user.caller,
            start=None,
            end=None,
            modality=v["modalite"] or None,
            commune_insee=commune_insee,
            near=near,
            radius_km=radius,
            practitioner_id=None,
            cursor=cursor,
            limit=50,
            bookable_only=bookable_only,
        )
    except ValidationFailed:  # a stale or forged cursor
        rows, next_cursor = [], None
    found.results, found.next_cursor, found.searched = rows, next_cursor, True
    return found


def booking_values(form: Form | None) -> dict[str, str]:
    values = form.values() if form is not None else {}
    values["jeton"] = str(uuid.uuid4())  # the Idempotency-Key of this booking attempt
    return values


async def _commune_names(
    session: AsyncSession, known: dict[str, Commune], search: Search
) -> dict[str, str]:
    """INSEE code → name: the caller's communes, and the one searched if it has none."""
    names = {c.insee: c.name or c.insee for c in known.values()}
    if search.commune_insee is not None and search.commune_insee not in names:
        names.update(await communes_ref.names(session, [search.commune_insee]))
    return names


async def _search_page(
    request: Request,
    session: AsyncSession,
    user: WebUser,
    criteria: dict[str, str],
    *,
    cursor: str | None = None,
    booking: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    taken: str | None = None,
    status: int = 200,
    count_empty: bool = False,
) -> Response:
    known = {c.insee: c for c in await communes(session, user.caller)}
    search = await run_search(session, user, criteria, known, cursor)
    found_nothing = search.searched and not search.results
    if count_empty and found_nothing and cursor is None:  # unmet demand, counted apart
        v = search.values
        point = v["point"]
        if not point and search.commune_insee is None and search.centre is not None:
            point = "{}, {}".format(*search.centre)  # a postal code: counted at its centre
        await unmet_pages.count_empty_search(
            session, user, search.commune_insee, point, v["modalite"]
        )
    errors = errors or {}
    first_error = next(iter(errors), None)
    return show(
        request,
        user,
        "regulation.html",
        status,
        search=search,
        commune_names=await _commune_names(session, known, search),
        radii=RADII,
        booking=booking or booking_values(None),
        errors=errors,
        first_error=first_error,
        # The first visit puts the keyboard in the commune; a search error on its field.
        search_focus=next(iter(search.errors), None)
        or (None if any(criteria.values()) else "commune"),
        taken=taken,
        cursor=cursor,
        # Record an unmet request from this search (app/web/unmet_pages.py).
        unmet=unmet_pages.unmet_form(
            {**search.values, "commune": search.commune_insee or ""}, found_nothing
        ),
        unmet_errors={},
        unmet_focus=found_nothing,
        reasons=unmet_pages.REASONS,
        crises=await running_crises(session, user.caller),
    )


@router.get("")
async def search_page(
    request: Request,
    session: SessionDep,
    user: UserDep,
    commune: str = "",
    point: str = "",
    rayon: str = "",
    modalite: str = "",
    suite: str | None = None,
) -> Response:
    require_role(user, REGULATOR)
    criteria = {"commune": commune, "point": point, "rayon": rayon, "modalite": modalite}
    return await _search_page(request, session, user, criteria, cursor=suite, count_empty=True)


@router.post("/reserver")
async def book(request: Request, session: SessionDep, user: UserDep, form: FormDep) -> Response:
    """Book the chosen slot for the patient. A slot taken in the meantime shows the message
    and the search again (the patient's details stay in the form)."""
    require_role(user, REGULATOR)
    return await book_from_form(
        request, session, user, form, _search_page, refused=(SlotUnavailable, NotFound)
    )


SearchPage = Callable[..., Awaitable[Response]]


async def book_from_form(
    request: Request,
    session: AsyncSession,
    user: WebUser,
    form: Form,
    page: SearchPage,
    *,
    refused: tuple[type[AppError], ...],
    taker: str | None = None,
) -> Response:
    """The booking form of a search page (the regulator's, the CPTS's): the API's booking,
    idempotent on the form's one-time token. A booking `refused` for the slot (taken, gone,
    not bookable by the caller) shows `page` again with why and the patient kept."""
    criteria = {name: form.get(name) for name in SEARCH_FIELDS}
    mine = await caller_communes(session, user.caller)
    typed = await read_communes(session, form, ["patient.commune_insee"], mine, with_list=False)
    body, errors, token = booking_form(typed.form)
    errors.update(typed.errors)
    if body is None or errors:
        return await page(
            request, session, user, criteria, booking=form.values(), errors=errors, status=422
        )

    async def run() -> BookingOut:
        return booking_views.render(await booking_creation.book(session, user.caller, body))

    try:
        response = await idempotent(session, user.caller, token, "POST /v1/bookings", body, run)
    except AppError as exc:
        if not isinstance(exc, (*refused, ValidationFailed)):
            raise
        await session.rollback()
        values = booking_values(form)
        values.pop("slot_id", None)
        reused = "Ce formulaire a déjà servi à une réservation (voir « Rendez-vous »)."
        why = not_booked(exc, reused) if taker is None else not_booked(exc, reused, taker)
        return await page(request, session, user, criteria, booking=values, taken=why, status=409)
    booking_id = json.loads(bytes(response.body))["id"]
    return done(request, f"/rendez-vous/{booking_id}", "Rendez-vous réservé.")


# Surnuméraire bookings --------------------------------------------------------------------


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
) -> Response:
    options = await _overbook_gps(session, user)
    errors = errors or {}
    values.setdefault("jeton", str(uuid.uuid4()))
    return show(request, user, "overbook.html", status, gps=options, values=values,
                errors=errors, first_error=next(iter(errors), None))  # fmt: skip


@router.get("/surnumeraire")
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


@router.post("/surnumeraire")
async def overbook(request: Request, session: SessionDep, user: UserDep, form: FormDep) -> Response:
    """A consultation beyond the published slots, within the GP's daily cap, idempotent on the
    form's one-time token like a slot booking."""
    require_role(user, REGULATOR)
    values = form.values()
    mine = await caller_communes(session, user.caller)
    typed = await read_communes(session, form, ["patient.commune_insee"], mine, with_list=False)
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
        return await _overbook_page(request, session, user, values, errors, 422)
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
