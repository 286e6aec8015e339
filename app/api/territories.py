import uuid

from fastapi import APIRouter, Response, status

from app.api.deps import CallerDep, SessionDep
from app.directory import readiness, regulator_service, schemas, territory_service
from app.directory.models import Territory
from app.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from app.validators import local

router = APIRouter(prefix="/v1/territories", tags=["directory"])


def _out(territory: object, reasons: dict[uuid.UUID, list[str]]) -> schemas.TerritoryOut:
    out = schemas.TerritoryOut.model_validate(territory)
    out.created_at = local(out.created_at, out.timezone)
    out.sas_not_ready_reasons = reasons.get(out.id, [])
    out.sas_ready = not out.sas_not_ready_reasons
    return out


async def _one(session: SessionDep, territory: Territory) -> schemas.TerritoryOut:
    return _out(territory, await readiness.reasons(session, [territory]))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=schemas.TerritoryOut)
async def create_territory(
    body: schemas.TerritoryIn, session: SessionDep, caller: CallerDep
) -> schemas.TerritoryOut:
    """Create a CPTS territory (admin)."""
    return await _one(session, await territory_service.create_territory(session, caller, body))


@router.get("", response_model=Page[schemas.TerritoryOut])
async def list_territories(
    session: SessionDep,
    caller: CallerDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[schemas.TerritoryOut]:
    rows, next_cursor = await territory_service.list_territories(
        session, caller, cursor=cursor, limit=limit
    )
    reasons = await readiness.reasons(session, rows)
    return Page(items=[_out(t, reasons) for t in rows], next_cursor=next_cursor)


@router.get("/{territory_id}", response_model=schemas.TerritoryOut)
async def get_territory(
    territory_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> schemas.TerritoryOut:
    return await _one(session, await territory_service.get_territory(session, caller, territory_id))


@router.patch("/{territory_id}", response_model=schemas.TerritoryOut)
async def update_territory(
    territory_id: uuid.UUID, body: schemas.TerritoryPatch, session: SessionDep, caller: CallerDep
) -> schemas.TerritoryOut:
    return await _one(
        session, await territory_service.update_territory(session, caller, territory_id, body)
    )


@router.delete("/{territory_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_territory(
    territory_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> Response:
    await territory_service.delete_territory(session, caller, territory_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{territory_id}/regulators", status_code=status.HTTP_204_NO_CONTENT)
async def link_regulator(
    territory_id: uuid.UUID, body: schemas.RegulatorLinkIn, session: SessionDep, caller: CallerDep
) -> Response:
    """Link a SAS to this territory so that its regulators can search and book here (admin)."""
    await regulator_service.link_regulator(session, caller, territory_id, body.regulator_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/{territory_id}/regulators/{regulator_id}", status_code=status.HTTP_204_NO_CONTENT)
async def unlink_regulator(
    territory_id: uuid.UUID, regulator_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> Response:
    await regulator_service.unlink_regulator(session, caller, territory_id, regulator_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
