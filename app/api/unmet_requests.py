"""Unmet SNP demand: regulators record what they could not place; coordinators and
dashboards read it and its figures."""

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime
from starlette.responses import Response

from app.api.commune_names import name_communes
from app.api.deps import CallerDep, SessionDep
from app.clock import now_utc
from app.errors import ValidationFailed
from app.idempotency import IdempotencyKeyHeader, idempotent
from app.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from app.unmet_demand import figures, schemas, service
from app.unmet_demand.service import check_period

router = APIRouter(prefix="/v1/unmet-requests", tags=["unmet demand"])
_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not a regulator, or a place outside the territories it serves"},
    404: {"description": "Not found, or not visible to this key"},
}
DEFAULT_DAYS = 28
FromQuery = Annotated[AwareDatetime | None, Query(alias="from")]


@router.post("", status_code=201, response_model=schemas.UnmetRequestOut, responses=_RESPONSES)
async def record_unmet(
    body: schemas.UnmetRequestIn,
    session: SessionDep,
    caller: CallerDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Record a SAS request that could not be placed (regulator). No patient identity: where
    (`commune_insee` or `near`), which modality, within how many hours, and why. The territory
    is derived from the place among the SAS's territories. Requires an `Idempotency-Key`."""

    async def run() -> schemas.UnmetRequestOut:
        return await name_communes(
            session, service.render(await service.record(session, caller, body, now_utc()))
        )

    return await idempotent(session, caller, idempotency_key, "POST /v1/unmet-requests", body, run)


@router.get("", response_model=Page[schemas.UnmetRequestOut])
async def list_unmet(
    session: SessionDep,
    caller: CallerDep,
    from_: FromQuery = None,
    to: AwareDatetime | None = None,
    kind: schemas.Kind | None = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[schemas.UnmetRequestOut]:
    """Unmet requests by the time they were recorded: a coordinator or dashboard sees its
    territory's, a regulator those it recorded. `kind` separates the declared requests from
    the empty searches counted by the regulation page."""
    if from_ is not None and to is not None and to <= from_:
        raise ValidationFailed.field(["query", "to"], "must be after from")
    views, next_cursor = await service.list_requests(
        session, caller, start=from_, end=to, kind=kind, cursor=cursor, limit=limit
    )
    return Page(
        items=await name_communes(session, [service.render(v) for v in views]),
        next_cursor=next_cursor,
    )


def _period(from_: datetime | None, to: datetime | None) -> tuple[datetime, datetime]:
    end = to or now_utc()
    start = from_ or end - timedelta(days=DEFAULT_DAYS)
    check_period(start, end)
    return start, end


@router.get("/summary", response_model=schemas.UnmetSummary, responses=_RESPONSES)
async def unmet_summary(
    session: SessionDep,
    caller: CallerDep,
    from_: FromQuery = None,
    to: AwareDatetime | None = None,
    territory_id: uuid.UUID | None = None,
) -> schemas.UnmetSummary:
    """The unmet-demand figures of the caller's territory (coordinator, dashboard; an admin
    names `territory_id`) over `from`..`to` (default: the last 28 days, at most 400 days):
    SAS requests = placed + unmet, the share placed (and within 48 h), unmet by reason,
    commune and local hour, empty searches apart. Defined in docs/indicators.md."""
    start, end = _period(from_, to)
    return await figures.summary(session, caller, territory_id, start, end)


@router.get("/gap-map", response_model=list[schemas.GapCell], responses=_RESPONSES)
async def gap_map(
    session: SessionDep,
    caller: CallerDep,
    from_: FromQuery = None,
    to: AwareDatetime | None = None,
    territory_id: uuid.UUID | None = None,
) -> list[schemas.GapCell]:
    """Offer (SAS slots published, by local hour of their start) against demand (placed and
    unmet SAS requests, by local hour they were made) per commune, ISO day of week
    (1 = Monday) and local hour: the cells of the coordinator's gap map."""
    start, end = _period(from_, to)
    return await name_communes(
        session, await figures.gap_cells(session, caller, territory_id, start, end)
    )


@router.get("/{request_id}", response_model=schemas.UnmetRequestOut, responses=_RESPONSES)
async def get_unmet(
    request_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> schemas.UnmetRequestOut:
    return await name_communes(
        session, service.render(await service.get(session, caller, request_id))
    )
