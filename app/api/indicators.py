"""ACI indicators (JSON or CSV) and the activity log."""

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity import export, indicators
from app.activity.audit import PatientAccess
from app.activity.models import AciTarget, ActivityEvent
from app.api.deps import CallerDep, SessionDep
from app.bounds import MAX_BIGINT, BoundedDate, BoundedDatetime
from app.clock import now_utc
from app.directory.models import Territory
from app.errors import NotFound, ValidationFailed
from app.pagination import (
    DEFAULT_LIMIT,
    CursorQuery,
    LimitQuery,
    cursor_int,
    decode_cursor,
    encode_cursor,
)
from app.security import ADMIN, COORDINATOR, DASHBOARD, Caller
from app.validators import StrictModel, local

router = APIRouter(tags=["indicators"])


class PeriodOut(BaseModel):
    period_start: date
    period_end: date
    snp: dict[str, Any]
    mt: dict[str, Any]
    unmet: dict[str, Any] = Field(
        description="SAS requests placed and unmet, calls for slots (docs/indicators.md)"
    )
    crisis: dict[str, Any] = Field(
        default_factory=dict,
        description="Crisis response: crises declared, calls, capacity opened (docs/indicators.md)",
    )


class IndicatorsOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    territory_id: uuid.UUID
    timezone: str
    granularity: str
    from_: date = Field(alias="from")
    to: date
    aci_signed_on: date | None = None
    population: int | None = None
    periods: list[PeriodOut]
    targets: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Yearly ACI targets with the value reached over the requested periods",
    )
    definitions: str = "docs/indicators.md"


def csv_rows(result: IndicatorsOut) -> list[dict[str, Any]]:
    rows = [
        {"period_start": p.period_start, "period_end": p.period_end,
         **export.flatten("snp.", p.snp), **export.flatten("mt.", p.mt),
         **export.flatten("unmet.", p.unmet), **export.flatten("crisis.", p.crisis)}
        for p in result.periods
    ]  # fmt: skip
    # A commune with unmet requests in one period has 0 in the others, not an empty cell.
    communes = {k for row in rows for k in row if k.startswith("unmet.unmet_by_commune.")}
    return [{**row, **{k: row.get(k, 0) for k in sorted(communes)}} for row in rows]


def csv_response(result: IndicatorsOut, dialect: export.Dialect) -> Response:
    return Response(
        export.to_csv(csv_rows(result), dialect),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="indicateurs.csv"'},
    )


def current_time() -> datetime:
    """The clock of the indicators' routes (tests override this dependency)."""
    return now_utc()


NowDep = Annotated[datetime, Depends(current_time)]


async def territory_indicators(
    session: AsyncSession,
    territory: Territory,
    granularity: indicators.Granularity,
    start: date,
    end: date,
    now: datetime,
) -> IndicatorsOut:
    """The figures and target progress of a territory, as the API and the dashboard show
    them."""
    figures = await indicators.compute(
        session,
        territory.id,
        territory.timezone,
        granularity,
        start,
        end,
        now=now,
        population=territory.population,
        signed_on=territory.aci_signed_on,
    )
    targets = await _targets(session, territory.id)
    return IndicatorsOut(
        territory_id=territory.id,
        timezone=territory.timezone,
        granularity=granularity,
        from_=start,
        to=end,
        aci_signed_on=territory.aci_signed_on,
        population=territory.population,
        periods=[PeriodOut(**f.__dict__) for f in figures],
        targets=indicators.progress(figures, targets, territory.aci_signed_on),
    )


async def figures_territory(
    session: AsyncSession, caller: Caller, territory_id: uuid.UUID | None
) -> Territory:
    """The territory whose figures a coordinator, dashboard or admin key asks for (its own
    by default)."""
    caller.require(ADMIN, COORDINATOR, DASHBOARD)
    if territory_id is None:
        if caller.territory_id is None:
            raise ValidationFailed.field(["query", "territory_id"], "required for this key")
        territory_id = caller.territory_id
    territory = await session.get(Territory, territory_id)
    if territory is None or not caller.sees_territory(territory.id):
        raise NotFound("Territory not found")
    return territory


@router.get(
    "/v1/indicators",
    response_model=IndicatorsOut,
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_indicators(
    session: SessionDep,
    caller: CallerDep,
    now: NowDep,
    territory_id: uuid.UUID | None = None,
    from_: Annotated[
        BoundedDate | None, Query(alias="from", description="Default: start of the indicator year")
    ] = None,
    to: Annotated[
        BoundedDate | None, Query(description="Exclusive; default: a year after from")
    ] = None,
    granularity: indicators.Granularity = "month",
    dialect: Annotated[
        export.Dialect,
        Query(description="CSV only: `excel` (French, `;`, BOM) or `raw` (`,`, dotted names)"),
    ] = "excel",
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Any:
    """The access-to-care indicators of a territory per local week, month, quarter or year
    (ACI years from the territory's `aci_signed_on`), all computed from the activity log.
    `Accept: text/csv` gives the same figures as CSV (see `dialect`)."""
    territory = await figures_territory(session, caller, territory_id)
    today = local(now, territory.timezone).date()
    start = from_ or indicators.aci_year_start(today, territory.aci_signed_on)
    end = to or indicators.next_period(
        indicators.aci_year_start(start, territory.aci_signed_on), "year", territory.aci_signed_on
    )
    if end <= start:
        raise ValidationFailed.field(["query", "to"], "must be after from")
    if (end - start).days > 366 * 5:
        raise ValidationFailed.field(["query", "to"], "at most five years at a time")
    result = await territory_indicators(session, territory, granularity, start, end, now)
    if accept and "text/csv" in accept:
        return csv_response(result, dialect)
    return result


async def _targets(session: SessionDep, territory_id: uuid.UUID) -> dict[tuple[int, str], float]:
    rows = await session.execute(
        select(AciTarget.year, AciTarget.indicator, AciTarget.value).where(
            AciTarget.territory_id == territory_id
        )
    )
    return {(year, indicator): value for year, indicator, value in rows}


class TargetsIn(StrictModel):
    year: int = Field(ge=2020, le=2100)
    targets: dict[str, float] = Field(
        description=f"Indicator → yearly target; indicators: {', '.join(indicators.TARGETABLE)}"
    )

    @field_validator("targets")
    @classmethod
    def _known(cls, value: dict[str, float]) -> dict[str, float]:
        for name, target in value.items():
            if name not in indicators.TARGETABLE:
                raise ValueError(f"{name!r} is not an indicator with a yearly target")
            if target < 0:
                raise ValueError(f"{name}: a target cannot be negative")
        return value


@router.put("/v1/indicators/targets", response_model=TargetsIn)
async def set_targets(body: TargetsIn, session: SessionDep, caller: CallerDep) -> TargetsIn:
    """Record the yearly targets of the territory's ACI contract (coordinator); indicators
    not named keep their target."""
    caller.require(COORDINATOR)
    assert caller.territory_id is not None
    for name, value in body.targets.items():
        await session.execute(
            pg_insert(AciTarget)
            .values(territory_id=caller.territory_id, year=body.year, indicator=name, value=value)
            .on_conflict_do_update(
                index_elements=["territory_id", "year", "indicator"], set_={"value": value}
            )
        )
    current = await _targets(session, caller.territory_id)
    return TargetsIn(
        year=body.year, targets={i: v for (y, i), v in current.items() if y == body.year}
    )


class AccessOut(BaseModel):
    id: int
    at: AwareDatetime
    api_key_id: uuid.UUID
    role: str
    record_type: str
    record_id: uuid.UUID
    action: str


class AccessPage(BaseModel):
    items: list[AccessOut]
    next_cursor: str | None


@router.get("/v1/audit", response_model=AccessPage)
async def list_patient_access(
    session: SessionDep,
    caller: CallerDep,
    record_id: uuid.UUID | None = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> AccessPage:
    """Who read which patient record, when (coordinator: its territory), newest first."""
    caller.require(COORDINATOR, ADMIN)
    stmt = select(PatientAccess)
    if caller.role == COORDINATOR:
        stmt = stmt.where(PatientAccess.territory_id.in_(caller.territory_ids))
    if record_id is not None:
        stmt = stmt.where(PatientAccess.record_id == record_id)
    if cursor:
        (before,) = decode_cursor(cursor, 1)
        stmt = stmt.where(PatientAccess.id < cursor_int(before, 0, MAX_BIGINT))
    rows = list(
        (await session.scalars(stmt.order_by(PatientAccess.id.desc()).limit(limit + 1))).all()
    )
    next_cursor = encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None
    return AccessPage(
        items=[AccessOut.model_validate(r, from_attributes=True) for r in rows[:limit]],
        next_cursor=next_cursor,
    )


class ActivityOut(BaseModel):
    id: int
    at: AwareDatetime
    type: str
    practitioner_id: uuid.UUID | None
    subject_id: uuid.UUID | None
    data: dict[str, Any]


class ActivityPage(BaseModel):
    items: list[ActivityOut]
    next_cursor: str | None


@router.get("/v1/activity", response_model=ActivityPage)
async def list_activity(
    session: SessionDep,
    caller: CallerDep,
    from_: Annotated[BoundedDatetime | None, Query(alias="from")] = None,
    to: BoundedDatetime | None = None,
    type: Annotated[str | None, Query(max_length=60, description="e.g. booking.booked")] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> ActivityPage:
    """The territory's append-only activity log (coordinator), oldest first. No patient
    data is ever written to it."""
    caller.require(COORDINATOR, ADMIN)
    stmt = select(ActivityEvent)
    if caller.role == COORDINATOR:
        stmt = stmt.where(ActivityEvent.territory_id.in_(caller.territory_ids))
    if from_ is not None:
        stmt = stmt.where(ActivityEvent.at >= from_)
    if to is not None:
        stmt = stmt.where(ActivityEvent.at < to)
    if type is not None:
        stmt = stmt.where(ActivityEvent.type == type)
    if cursor:
        (after,) = decode_cursor(cursor, 1)
        stmt = stmt.where(ActivityEvent.id > cursor_int(after, 0, MAX_BIGINT))
    rows = list((await session.scalars(stmt.order_by(ActivityEvent.id).limit(limit + 1))).all())
    next_cursor = encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None
    return ActivityPage(
        items=[ActivityOut.model_validate(r, from_attributes=True) for r in rows[:limit]],
        next_cursor=next_cursor,
    )
