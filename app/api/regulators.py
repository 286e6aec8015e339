import uuid
from collections.abc import Sequence

from fastapi import APIRouter, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import CallerDep, SessionDep
from app.directory import regulator_service, schemas
from app.directory.models import Regulator
from app.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from app.security import Caller

router = APIRouter(prefix="/v1/regulators", tags=["directory"])


async def _out(
    session: AsyncSession, caller: Caller, regulators: Sequence[Regulator]
) -> list[schemas.RegulatorOut]:
    links = await regulator_service.regulator_territory_ids(session, [r.id for r in regulators])
    return [
        schemas.RegulatorOut(
            id=r.id,
            name=r.name,
            department=r.department,
            # Only the links the caller may see (a scoped regulator key: its own territory).
            territory_ids=[
                t for t in links[r.id] if caller.instance_wide or t in caller.territory_ids
            ],
            created_at=r.created_at,
        )
        for r in regulators
    ]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=schemas.RegulatorOut)
async def create_regulator(
    body: schemas.RegulatorIn, session: SessionDep, caller: CallerDep
) -> schemas.RegulatorOut:
    """Create a SAS (admin)."""
    return (
        await _out(
            session, caller, [await regulator_service.create_regulator(session, caller, body)]
        )
    )[0]


@router.get("", response_model=Page[schemas.RegulatorOut])
async def list_regulators(
    session: SessionDep,
    caller: CallerDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[schemas.RegulatorOut]:
    rows, next_cursor = await regulator_service.list_regulators(
        session, caller, cursor=cursor, limit=limit
    )
    return Page(items=await _out(session, caller, rows), next_cursor=next_cursor)


@router.get("/{regulator_id}", response_model=schemas.RegulatorOut)
async def get_regulator(
    regulator_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> schemas.RegulatorOut:
    return (
        await _out(
            session, caller, [await regulator_service.get_regulator(session, caller, regulator_id)]
        )
    )[0]


@router.patch("/{regulator_id}", response_model=schemas.RegulatorOut)
async def update_regulator(
    regulator_id: uuid.UUID, body: schemas.RegulatorPatch, session: SessionDep, caller: CallerDep
) -> schemas.RegulatorOut:
    regulator = await regulator_service.update_regulator(session, caller, regulator_id, body)
    return (await _out(session, caller, [regulator]))[0]


@router.delete("/{regulator_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_regulator(
    regulator_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> Response:
    await regulator_service.delete_regulator(session, caller, regulator_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
