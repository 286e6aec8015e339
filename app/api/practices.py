import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.api.commune_names import name_communes
from app.api.deps import CallerDep, SessionDep
from app.api.local_time import in_local_time
from app.directory import practice_service, schemas
from app.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from app.validators import InseeCode

router = APIRouter(prefix="/v1/practices", tags=["directory"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=schemas.PracticeOut)
async def create_practice(
    body: schemas.PracticeIn, session: SessionDep, caller: CallerDep
) -> schemas.PracticeOut:
    practice = await practice_service.create_practice(session, caller, body)
    return (
        await name_communes(
            session, await in_local_time(session, [schemas.PracticeOut.model_validate(practice)])
        )
    )[0]


@router.get("", response_model=Page[schemas.PracticeOut])
async def list_practices(
    session: SessionDep,
    caller: CallerDep,
    territory_id: uuid.UUID | None = None,
    commune_insee: Annotated[InseeCode | None, Query()] = None,
    name: Annotated[str | None, Query(max_length=200, description="Part of the name")] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[schemas.PracticeOut]:
    rows, next_cursor = await practice_service.list_practices(
        session,
        caller,
        territory_id=territory_id,
        commune_insee=commune_insee,
        name=name,
        cursor=cursor,
        limit=limit,
    )
    items = [schemas.PracticeOut.model_validate(p) for p in rows]
    return Page(
        items=await name_communes(session, await in_local_time(session, items)),
        next_cursor=next_cursor,
    )


@router.get("/{practice_id}", response_model=schemas.PracticeOut)
async def get_practice(
    practice_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> schemas.PracticeOut:
    practice = await practice_service.get_practice(session, caller, practice_id)
    return (
        await name_communes(
            session, await in_local_time(session, [schemas.PracticeOut.model_validate(practice)])
        )
    )[0]


@router.patch("/{practice_id}", response_model=schemas.PracticeOut)
async def update_practice(
    practice_id: uuid.UUID, body: schemas.PracticePatch, session: SessionDep, caller: CallerDep
) -> schemas.PracticeOut:
    practice = await practice_service.update_practice(session, caller, practice_id, body)
    return (
        await name_communes(
            session, await in_local_time(session, [schemas.PracticeOut.model_validate(practice)])
        )
    )[0]


@router.delete("/{practice_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_practice(
    practice_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> Response:
    await practice_service.delete_practice(session, caller, practice_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
