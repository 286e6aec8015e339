"""Record and read unmet SNP requests. A request is a count (where, which modality, within
how long, why), never a person. Services flush, never commit; the clock is a parameter."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.service import record as record_event
from app.directory.models import Practice, Territory
from app.errors import Forbidden, NotFound, ValidationFailed
from app.pagination import decode_time_id_cursor, encode_cursor
from app.scheduling.queries import great_circle_km
from app.security import ADMIN, COORDINATOR, DASHBOARD, REGULATOR, Caller
from app.unmet_demand import schemas
from app.unmet_demand.models import UnmetRequest
from app.validators import local

READERS = (ADMIN, COORDINATOR, DASHBOARD, REGULATOR)


@dataclass
class UnmetView:
    request: UnmetRequest
    timezone: str
    show_case_ref: bool


def render(view: UnmetView) -> schemas.UnmetRequestOut:
    r = view.request
    near = schemas.Point(lat=r.lat, lon=r.lon) if r.lat is not None and r.lon is not None else None
    return schemas.UnmetRequestOut(
        id=r.id,
        territory_id=r.territory_id,
        regulator_id=r.regulator_id,
        kind=r.kind,
        recorded_at=local(r.recorded_at, view.timezone),
        commune_insee=r.commune_insee,
        near=near,
        modality=r.modality,
        wanted_within_hours=r.wanted_within_hours,
        reason=r.reason,
        sas_case_ref=r.sas_case_ref if view.show_case_ref else None,
    )


def half_hour(at: datetime) -> datetime:
    """The start of the half hour `at` falls in (empty searches count once in it)."""
    return at.replace(minute=at.minute - at.minute % 30, second=0, microsecond=0)


# Where a request belongs ------------------------------------------------------------------


def _several(field: str) -> ValidationFailed:
    return ValidationFailed.field(
        ["body", field], "the territory cannot be derived: give territory_id"
    )


async def _commune_territory(
    session: AsyncSession, caller: Caller, insee: str, given: uuid.UUID | None
) -> uuid.UUID:
    """The territory of a commune among the caller's: the one whose practices are there."""
    mine = caller.territory_ids
    found = set(
        (
            await session.scalars(
                select(Practice.territory_id).where(Practice.commune_insee == insee).distinct()
            )
        ).all()
    )
    if given is not None:
        return given
    ours = found & mine
    if len(ours) == 1:
        return next(iter(ours))
    if len(ours) > 1:
        raise _several("territory_id")
    if found:
        raise Forbidden("This commune is in none of the territories this SAS serves")
    if len(mine) == 1:
        return next(iter(mine))
    raise _several("territory_id")


async def _point_territory(
    session: AsyncSession, caller: Caller, point: schemas.Point, given: uuid.UUID | None
) -> tuple[uuid.UUID, str | None]:
    """The territory of a point among the caller's: that of the nearest of their practices
    (whose commune stands for the point's in the gap map); a territory given chooses among
    its own practices."""
    stmt = select(Practice.territory_id, Practice.commune_insee).order_by(
        great_circle_km(point.lat, point.lon), Practice.id
    )
    if given is not None:
        stmt = stmt.where(Practice.territory_id == given)
    else:
        stmt = stmt.where(Practice.territory_id.in_(caller.territory_ids))
    nearest = (await session.execute(stmt.limit(1))).one_or_none()
    if nearest is not None:
        return nearest[0], nearest[1]
    if given is not None:
        return given, None
    if len(caller.territory_ids) == 1:
        return next(iter(caller.territory_ids)), None
    raise _several("territory_id")


# Recording --------------------------------------------------------------------------------


async def _zone(session: AsyncSession, territory_id: uuid.UUID) -> str:
    tz = await session.scalar(select(Territory.timezone).where(Territory.id == territory_id))
    assert tz is not None
    return tz


async def record(
    session: AsyncSession, caller: Caller, data: schemas.UnmetRequestIn, now: datetime
) -> UnmetView:
    """A regulator declares a request it could not place, in one of its territories."""
    caller.require(REGULATOR)
    if data.territory_id is not None and data.territory_id not in caller.territory_ids:
        raise Forbidden("This territory is not one this SAS serves")
    if data.near is not None:
        territory_id, commune = await _point_territory(
            session, caller, data.near, data.territory_id
        )
    else:
        assert data.commune_insee is not None
        commune = data.commune_insee
        territory_id = await _commune_territory(session, caller, commune, data.territory_id)
    request = UnmetRequest(
        id=uuid.uuid4(),
        territory_id=territory_id,
        regulator_id=caller.regulator_id,
        recorded_by_key_id=caller.key_id,
        kind="declared",
        recorded_at=now,
        commune_insee=commune,
        lat=data.near.lat if data.near else None,
        lon=data.near.lon if data.near else None,
        modality=data.modality,
        wanted_within_hours=data.wanted_within_hours,
        reason=data.reason,
        sas_case_ref=data.sas_case_ref,
    )
    session.add(request)
    await session.flush()
    await record_event(
        session,
        "unmet.recorded",
        territory_id=territory_id,
        subject_id=request.id,
        actor_key_id=caller.key_id,
        reason=data.reason,
        modality=data.modality,
        wanted_within_hours=data.wanted_within_hours,
        commune_insee=commune,
    )
    return UnmetView(request, await _zone(session, territory_id), show_case_ref=True)


async def count_empty_search(
    session: AsyncSession,
    caller: Caller,
    *,
    commune_insee: str | None,
    near: tuple[float, float] | None,
    modality: str | None,
    now: datetime,
) -> bool:
    """Count a regulator's search that found nothing, once per regulator, commune and half
    hour; False when that half hour already counted it, or when the place is in none of the
    caller's territories (a point counts in the commune of the nearest practice). Kept apart
    from declared requests (`kind = empty_search`)."""
    if caller.role != REGULATOR or caller.regulator_id is None:
        return False
    mine = Practice.territory_id.in_(caller.territory_ids)
    if near is not None:
        found = (
            await session.execute(
                select(Practice.territory_id, Practice.commune_insee)
                .where(mine)
                .order_by(great_circle_km(*near), Practice.id)
                .limit(1)
            )
        ).one_or_none()
        if found is None:
            return False
        territory_id, commune_insee = found[0], found[1]
    elif commune_insee is not None:
        ours = (
            await session.scalars(
                select(Practice.territory_id)
                .where(Practice.commune_insee == commune_insee, mine)
                .distinct()
                .order_by(Practice.territory_id)
            )
        ).all()
        if not ours:
            return False
        territory_id = ours[0]
    else:
        return False
    request_id = uuid.uuid4()
    inserted = await session.scalar(
        insert(UnmetRequest)
        .values(
            id=request_id,
            territory_id=territory_id,
            regulator_id=caller.regulator_id,
            recorded_by_key_id=caller.key_id,
            kind="empty_search",
            recorded_at=now,
            commune_insee=commune_insee,
            modality=modality,
            reason="no_slot",
            half_hour=half_hour(now),
        )
        .on_conflict_do_nothing(
            index_elements=["regulator_id", "commune_insee", "half_hour"],
            index_where=text("kind = 'empty_search'"),
        )
        .returning(UnmetRequest.id)
    )
    if inserted is None:
        return False
    await record_event(
        session,
        "unmet.empty_search",
        territory_id=territory_id,
        subject_id=request_id,
        actor_key_id=caller.key_id,
        modality=modality,
        commune_insee=commune_insee,
    )
    return True


# Reading ----------------------------------------------------------------------------------


def _visible(caller: Caller) -> Select[UnmetRequest, str]:
    """Coordinators and dashboards read their territory's, a regulator those it recorded."""
    caller.require(*READERS)
    stmt = select(UnmetRequest, Territory.timezone).join(
        Territory, Territory.id == UnmetRequest.territory_id
    )
    if caller.is_admin:
        return stmt
    stmt = stmt.where(UnmetRequest.territory_id.in_(caller.territory_ids))
    if caller.role == REGULATOR:
        stmt = stmt.where(UnmetRequest.regulator_id == caller.regulator_id)
    return stmt


async def list_requests(
    session: AsyncSession,
    caller: Caller,
    *,
    start: datetime | None,
    end: datetime | None,
    kind: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[UnmetView], str | None]:
    stmt = _visible(caller)
    if start is not None:
        stmt = stmt.where(UnmetRequest.recorded_at >= start)
    if end is not None:
        stmt = stmt.where(UnmetRequest.recorded_at < end)
    if kind is not None:
        stmt = stmt.where(UnmetRequest.kind == kind)
    if cursor:
        at, ident = decode_time_id_cursor(cursor)
        stmt = stmt.where(
            (UnmetRequest.recorded_at > at)
            | ((UnmetRequest.recorded_at == at) & (UnmetRequest.id > ident))
        )
    rows = (
        await session.execute(
            stmt.order_by(UnmetRequest.recorded_at, UnmetRequest.id).limit(limit + 1)
        )
    ).all()
    show = caller.role != DASHBOARD
    views = [UnmetView(r, tz, show) for r, tz in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = views[-1].request
        next_cursor = encode_cursor([last.recorded_at.isoformat(), last.id])
    return views, next_cursor


async def get(session: AsyncSession, caller: Caller, request_id: uuid.UUID) -> UnmetView:
    row = (await session.execute(_visible(caller).where(UnmetRequest.id == request_id))).first()
    if row is None:
        raise NotFound("Unmet request not found")
    return UnmetView(row[0], row[1], caller.role != DASHBOARD)


def check_period(start: datetime, end: datetime, max_days: int = 400) -> None:
    if end <= start:
        raise ValidationFailed.field(["query", "to"], "must be after from")
    if end - start > timedelta(days=max_days):
        raise ValidationFailed.field(["query", "to"], f"the period is at most {max_days} days")
