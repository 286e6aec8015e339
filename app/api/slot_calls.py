"""Calls for slots: the coordinator's floors (the territory's, and per group of communes), the
GPs' opt-in, the log of calls."""

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import AwareDatetime

from app.api.deps import CallerDep, SessionDep
from app.clock import now_utc
from app.unmet_demand import call_settings, calls, schemas
from app.unmet_demand.service import check_period

router = APIRouter(prefix="/v1/slot-calls", tags=["unmet demand"])


@router.put("/floor", response_model=schemas.FloorOut)
async def set_floor(
    body: schemas.FloorIn, session: SessionDep, caller: CallerDep
) -> schemas.FloorOut:
    """The coordinator's floor for its territory: when the free SAS slots of the next
    `window_hours` (default 48) fall under `floor`, the GPs who accept calls are asked for
    more (e-mail, and the webhook event `offer.low` to their practice), once a day at most."""
    return await call_settings.set_floor(session, caller, body)


AreaNameDep = Annotated[
    str,
    Path(
        min_length=1,
        max_length=100,
        pattern=r"^[^/\x00-\x1f\x7f]*[^/\s\x00-\x1f\x7f][^/\x00-\x1f\x7f]*$",
        description="The group's name, unique in the territory (no slash)",
    ),
]


@router.get("/area-floors", response_model=list[schemas.AreaFloorOut])
async def list_area_floors(session: SessionDep, caller: CallerDep) -> list[schemas.AreaFloorOut]:
    """The territory's groups of communes and their floors, by name."""
    return await call_settings.list_area_floors(session, caller)


@router.put("/area-floors/{name}", response_model=schemas.AreaFloorOut)
async def put_area_floor(
    name: AreaNameDep, body: schemas.AreaFloorIn, session: SessionDep, caller: CallerDep
) -> schemas.AreaFloorOut:
    """Create or replace a group of communes and its floor: when the free SAS slots of the
    next `window_hours` in its communes fall under `floor`, the GPs practising there who
    accept calls are asked for more. A commune belongs to one group of a territory at most."""
    return await call_settings.put_area_floor(session, caller, name.strip(), body)


@router.get("/area-floors/{name}", response_model=schemas.AreaFloorOut)
async def get_area_floor(
    name: AreaNameDep, session: SessionDep, caller: CallerDep
) -> schemas.AreaFloorOut:
    return await call_settings.get_area_floor(session, caller, name.strip())


@router.delete("/area-floors/{name}", status_code=204)
async def delete_area_floor(name: AreaNameDep, session: SessionDep, caller: CallerDep) -> Response:
    """The group goes; its past calls stay in the log, without their group."""
    await call_settings.delete_area_floor(session, caller, name.strip())
    return Response(status_code=204)


@router.put("/opt-ins/{practitioner_id}", status_code=204)
async def opt_in(
    practitioner_id: uuid.UUID, body: schemas.OptInIn, session: SessionDep, caller: CallerDep
) -> Response:
    """The GP accepts calls for slots at this address (its practice or the coordinator)."""
    await call_settings.set_opt_in(session, caller, practitioner_id, body)
    return Response(status_code=204)


@router.delete("/opt-ins/{practitioner_id}", status_code=204)
async def opt_out(practitioner_id: uuid.UUID, session: SessionDep, caller: CallerDep) -> Response:
    await call_settings.set_opt_in(session, caller, practitioner_id, None)
    return Response(status_code=204)


@router.post("/run", response_model=schemas.RunOut)
async def run_now(session: SessionDep, caller: CallerDep) -> schemas.RunOut:
    """Check the territory's offer now (the job does it every 15 minutes)."""
    territory_id = calls.coordinator_territory(caller)
    return schemas.RunOut(calls=len(await calls.run(session, now_utc(), territory_id)))


@router.get("", response_model=list[schemas.SlotCallOut])
async def list_calls(
    session: SessionDep,
    caller: CallerDep,
    from_: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    to: AwareDatetime | None = None,
) -> list[schemas.SlotCallOut]:
    """The territory's calls (default: the last 28 days), each with the slots its GP
    published within 24 h."""
    end = to or now_utc()
    start = from_ or end - timedelta(days=28)
    check_period(start, end)
    return await calls.list_calls(session, caller, start, end)
