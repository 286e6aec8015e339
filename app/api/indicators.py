"""ACI indicators (JSON or CSV) and the activity log."""

import csv
import io
import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select

from app.activity import indicators
from app.activity.models import ActivityEvent
from app.api.deps import CallerDep, SessionDep
from app.directory.models import Territory
from app.errors import NotFound, ValidationFailed
from app.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, decode_cursor, encode_cursor
from app.security import ADMIN, COORDINATOR, DASHBOARD

router = APIRouter(tags=["indicators"])


class PeriodOut(BaseModel):
    period_start: date
    period_end: date
    snp: dict[str, Any]
    mt: dict[str, Any]


class IndicatorsOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    territory_id: uuid.UUID
    timezone: str
    granularity: str
    from_: date = Field(alias="from")
    to: date
    periods: list[PeriodOut]
    definitions: str = "docs/indicators.md"


def _flatten(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(f"{prefix}{key}.", value))
        else:
            flat[f"{prefix}{key}"] = "" if value is None else value
    return flat


def to_csv(result: IndicatorsOut) -> str:
    rows = [
        {"period_start": p.period_start.isoformat(), "period_end": p.period_end.isoformat(),
         **_flatten("snp.", p.snp), **_flatten("mt.", p.mt)}
        for p in result.periods
    ]  # fmt: skip
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["period_start"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


@router.get(
    "/v1/indicators",
    response_model=IndicatorsOut,
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_indicators(
    session: SessionDep,
    caller: CallerDep,
    territory_id: uuid.UUID | None = None,
    from_: Annotated[date | None, Query(alias="from", description="Default: 1 January")] = None,
    to: Annotated[date | None, Query(description="Exclusive; default: next 1 January")] = None,
    granularity: indicators.Granularity = "month",
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Any:
    """The access-to-care indicators of a territory per local week, month, quarter or year,
    all computed from the activity log. `Accept: text/csv` gives the same figures as CSV."""
    caller.require(ADMIN, COORDINATOR, DASHBOARD)
    if territory_id is None:
        if caller.territory_id is None:
            raise ValidationFailed.field(["query", "territory_id"], "required for this key")
        territory_id = caller.territory_id
    territory = await session.get(Territory, territory_id)
    if territory is None or not caller.sees_territory(territory.id):
        raise NotFound("Territory not found")
    today = date.today()
    start = from_ or date(today.year, 1, 1)
    end = to or date(start.year + 1, 1, 1)
    if end <= start:
        raise ValidationFailed.field(["query", "to"], "must be after from")
    if (end - start).days > 366 * 5:
        raise ValidationFailed.field(["query", "to"], "at most five years at a time")
    figures = await indicators.compute(
        session, territory.id, territory.timezone, granularity, start, end
    )
    result = IndicatorsOut(
        territory_id=territory.id,
        timezone=territory.timezone,
        granularity=granularity,
        from_=start,
        to=end,
        periods=[PeriodOut(**f.__dict__) for f in figures],
    )
    if accept and "text/csv" in accept:
        return Response(
            to_csv(result),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="indicateurs.csv"'},
        )
    return result


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
    from_: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    to: AwareDatetime | None = None,
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
        if not after.isdigit():
            raise ValidationFailed.field(["query", "cursor"], "invalid cursor")
        stmt = stmt.where(ActivityEvent.id > int(after))
    rows = list((await session.scalars(stmt.order_by(ActivityEvent.id).limit(limit + 1))).all())
    next_cursor = encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None
    return ActivityPage(
        items=[ActivityOut.model_validate(r, from_attributes=True) for r in rows[:limit]],
        next_cursor=next_cursor,
    )
