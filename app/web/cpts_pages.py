"""The CPTS's own slots (/cpts), for its practices and its coordinator: search the next 48
hours of the slots they may book (`cpts` and `public` ones of their territory, never the SAS's)
and book one for a patient passed between the CPTS's professionals. The regulator page's
search and booking form, on the API's services; a booking is idempotent on the form's
one-time token, so a double submission books once."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.api.deps import SessionDep
from app.directory.practice_service import communes
from app.errors import Forbidden, NotFound, SlotUnavailable
from app.security import COORDINATOR, PRACTICE
from app.web.auth import FormDep, UserDep, WebUser, require_role, show
from app.web.crisis_banner import running_crises
from app.web.regulator_pages import RADII, book_from_form, booking_values, run_search

router = APIRouter(prefix="/cpts", include_in_schema=False)


async def _page(
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
    choices: dict[str, list[Any]] | None = None,
) -> Response:
    known = {c.insee: c for c in await communes(session, user.caller)}
    search = await run_search(session, user, criteria, known, cursor, bookable_only=True)
    errors = errors or {}
    return show(
        request,
        user,
        "cpts.html",
        status,
        search=search,
        commune_names={c.insee: c.name or c.insee for c in known.values()},
        radii=RADII,
        booking=booking or booking_values(None),
        errors=errors,
        first_error=next(iter(errors), None),
        choices=choices or {},
        search_focus=next(iter(search.errors), None)
        or (None if any(criteria.values()) else "commune"),
        taken=taken,
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
    require_role(user, PRACTICE, COORDINATOR)
    criteria = {"commune": commune, "point": point, "rayon": rayon, "modalite": modalite}
    return await _page(request, session, user, criteria, cursor=suite)


@router.post("/reserver")
async def book(request: Request, session: SessionDep, user: UserDep, form: FormDep) -> Response:
    """Book the chosen CPTS slot for the patient. A slot taken in the meantime shows the
    message and the search again (the patient's details stay in the form)."""
    require_role(user, PRACTICE, COORDINATOR)
    return await book_from_form(
        request, session, user, form, _page,
        refused=(SlotUnavailable, NotFound, Forbidden), taker="quelqu'un d'autre",
    )  # fmt: skip
