import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.api.deps import CallerDep, SessionDep
from app.api.local_time import in_local_time
from app.directory import practitioner_service, schemas
from app.directory.models import Practitioner
from app.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from app.validators import Rpps

router = APIRouter(prefix="/v1/practitioners", tags=["directory"])


async def _one(session: SessionDep, practitioner: Practitioner) -> schemas.PractitionerOut:
    out = schemas.PractitionerOut.model_validate(practitioner)
    return (await in_local_time(session, [out]))[0]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=schemas.PractitionerOut)
async def create_practitioner(
    body: schemas.PractitionerIn, session: SessionDep, caller: CallerDep
) -> schemas.PractitionerOut:
    """Add a practitioner to a practice. A duplicate RPPS within a territory is a 409."""
    return await _one(
        session, await practitioner_service.create_practitioner(session, caller, body)
    )


@router.get("", response_model=Page[schemas.PractitionerOut])
async def list_practitioners(
    session: SessionDep,
    caller: CallerDep,
    territory_id: uuid.UUID | None = None,
    practice_id: uuid.UUID | None = None,
    rpps: Annotated[Rpps | None, Query()] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[schemas.PractitionerOut]:
    rows, next_cursor = await practitioner_service.list_practitioners(
        session,
        caller,
        territory_id=territory_id,
        practice_id=practice_id,
        rpps=rpps,
        cursor=cursor,
        limit=limit,
    )
    items = [schemas.PractitionerOut.model_validate(p) for p in rows]
    return Page(items=await in_local_time(session, items), next_cursor=next_cursor)


@router.get("/{practitioner_id}", response_model=schemas.PractitionerOut)
async def get_practitioner(
    practitioner_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> schemas.PractitionerOut:
    return await _one(
        session, await practitioner_service.get_practitioner(session, caller, practitioner_id)
    )


@router.patch("/{practitioner_id}", response_model=schemas.PractitionerOut)
async def update_practitioner(
    practitioner_id: uuid.UUID,
    body: schemas.PractitionerPatch,
    session: SessionDep,
    caller: CallerDep,
) -> schemas.PractitionerOut:
    practitioner = await practitioner_service.update_practitioner(
        session, caller, practitioner_id, body
    )
    return await _one(session, practitioner)


@router.put("/{practitioner_id}/mt-capacity", response_model=schemas.PractitionerOut)
async def set_mt_capacity(
    practitioner_id: uuid.UUID,
    body: schemas.MtCapacityIn,
    session: SessionDep,
    caller: CallerDep,
) -> schemas.PractitionerOut:
    """How many new médecin traitant patients this GP accepts in all."""
    practitioner = await practitioner_service.set_mt_capacity(
        session, caller, practitioner_id, body.mt_capacity
    )
    return await _one(session, practitioner)


@router.delete("/{practitioner_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_practitioner(
    practitioner_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> Response:
    """Delete a practitioner; one with future bookings is a 409."""
    await practitioner_service.delete_practitioner(session, caller, practitioner_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
