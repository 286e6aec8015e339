"""The SAS regulator's page (/regulation): search the next 48 hours around a commune or a
point, then book with the patient's details in the same page. Search and booking are the
API's services (same availability predicate, same rules); a booking is idempotent on the
form's one-time token, so a double submission books once."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.api.deps import SessionDep
from app.directory import communes as communes_ref
from app.directory.practice_service import Commune, communes
from app.errors import AppError, NotFound, SlotUnavailable, ValidationFailed
from app.idempotency import idempotent
from app.scheduling import booking_creation, booking_views
from app.scheduling import search as slot_search
from app.scheduling.booking_schemas import BookingOut
from app.security import REGULATOR
from app.web import unmet_pages
from app.web.auth import Form, FormDep, UserDep, WebUser, done, require_role, show
from app.web.commune_field import caller_communes, read_communes
from app.web.commune_search import locate
from app.web.crisis_banner import running_crises
from app.web.forms import (
    booking_form,
    not_booked,
)

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
    choices: dict[str, list[Any]] | None = None,
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
        choices=choices or {},
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
    typed = await read_communes(session, form, ["patient.commune_insee"], prefer=mine)
    body, errors, token = booking_form(typed.form)
    errors.update(typed.errors)
    if body is None or errors:
        return await page(
            request, session, user, criteria, booking=typed.values(form), errors=errors, status=422,
            choices=typed.choices,
        )  # fmt: skip

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
