"""Crises (surge mode): declaring and ending one, reading them with their calls, and opening
the capacity a called GP pledged."""

import uuid

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from app.api.deps import CallerDep, SessionDep
from app.clock import now_utc
from app.crisis import capacity, declaration, listing, schemas
from app.crisis.models import CrisisCall
from app.errors import NotFound
from app.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from app.security import PRACTICE

router = APIRouter(tags=["crisis"])


@router.post("/v1/crises", status_code=201, response_model=schemas.CrisisOut)
async def declare(
    body: schemas.CrisisIn, request: Request, session: SessionDep, caller: CallerDep
) -> schemas.CrisisOut:
    """Declare a crisis for the coordinator's territory (an admin names `territory_id`): the
    current plan's volunteers are called once each (e-mail, webhook `crisis.declared` with a
    signed link), their surnuméraire caps raised if the plan says so, the SAS told. Without a
    plan nobody is called (`volunteers_called` 0, `note`). 409 if a crisis already runs."""
    return await declaration.declare(session, caller, body, now_utc(), request.app.state.settings)


@router.get("/v1/crises", response_model=Page[schemas.CrisisListItem])
async def list_crises(
    session: SessionDep,
    caller: CallerDep,
    territory_id: uuid.UUID | None = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[schemas.CrisisListItem]:
    """The crises of the caller's territories (`territory_id`: one of them; an admin's, any),
    the latest declared first, each with its summary figures and its report's address
    (`/v1/crises/{id}/report`, `.csv`). Times in the territory's offset."""
    items, next_cursor = await listing.list_crises(session, caller, territory_id, cursor, limit)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/v1/crises/{crisis_id}", response_model=schemas.CrisisOut)
async def get_crisis(
    crisis_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> schemas.CrisisOut:
    """A crisis with its calls: who was called, the e-mail's status, what each GP opened (the
    coordinator, dashboard and admin see every call, a practice its own GPs', the SAS none)."""
    crisis = await declaration.get_crisis(session, caller, crisis_id)
    return await declaration.crisis_out(session, crisis, caller=caller)


@router.post("/v1/crises/{crisis_id}/calls", response_model=schemas.CrisisOut)
async def call_again(
    crisis_id: uuid.UUID, request: Request, session: SessionDep, caller: CallerDep
) -> schemas.CrisisOut:
    """Call the volunteers of the current plan who were not called yet (the plan changed
    during the crisis); nobody is called twice. 409 once the crisis has ended."""
    return await declaration.call_again(
        session, caller, crisis_id, now_utc(), request.app.state.settings
    )


@router.post("/v1/crises/{crisis_id}/end", response_model=schemas.CrisisEndOut)
async def end(crisis_id: uuid.UUID, session: SessionDep, caller: CallerDep) -> schemas.CrisisEndOut:
    """End the crisis: the surge rules stop at today's local date, their future free slots
    are closed (booked and held ones kept and counted), the e-mails not yet sent are not
    sent, raised caps are restored; webhook `crisis.ended`. A second end is a 409."""
    return await declaration.end(session, caller, crisis_id, now_utc())


@router.post("/v1/crisis-calls/{call_id}/open", status_code=201, response_model=schemas.OpenOut)
async def open_capacity(
    call_id: uuid.UUID,
    session: SessionDep,
    caller: CallerDep,
    body: schemas.OpenIn | None = None,
) -> JSONResponse:
    """The called GP's practice opens its pledged capacity (or the `pledges` given): surge
    rules visible to the SAS until the crisis' expected end, their slots made at once with
    the crisis' id, an overlap with an existing slot skipped. Once a call (409 after)."""
    caller.require(PRACTICE)
    call = await session.get(CrisisCall, call_id, with_for_update=True)
    if call is None or call.practice_id != caller.practice_id:
        raise NotFound("Crisis call not found")
    opened = await capacity.open_capacity(
        session, call, body.pledges if body else None, now_utc(), caller.key_id
    )
    out = schemas.OpenOut(
        call_id=call.id,
        crisis_id=call.crisis_id,
        rules=opened.rules,
        slots_opened=opened.slots_opened,
        slots_skipped=opened.slots_skipped,
    )
    return JSONResponse(out.model_dump(mode="json"), status_code=201)
