"""The one availability predicate, and the slot search built on it."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    DateTime,
    Float,
    Integer,
    Select,
    String,
    and_,
    any_,
    bindparam,
    case,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from app.db import DriverStatement
from app.directory.models import CommuneRecord, Practice, Practitioner, Territory
from app.scheduling.booking_models import Booking
from app.scheduling.models import Slot, Unavailability

EARTH_RADIUS_KM = 6371.0088

# The crises declared (app.crisis.models.Crisis), only as far as the search needs them: the
# slots of a crisis that runs (not ended) come first. The crisis domain sits above this one,
# so the table is named here rather than imported.
_CRISIS = table("crisis", column("id", Uuid), column("ended_at", DateTime(timezone=True)))


def crisis_first() -> ColumnElement[int]:
    """0 for a slot opened for a running crisis, else 1: the search's first sort key."""
    running = select(_CRISIS.c.id).where(_CRISIS.c.ended_at.is_(None))
    return case((Slot.crisis_id.in_(running), 0), else_=1)


# Visibility by role, in one place: which slots each role finds (search, FHIR, SMART links)
# and which it may book. `cpts` slots are the CPTS's own, for passing patients between its
# professionals: its practices and coordinator find and book them; the SAS's regulators and
# the national platform never see them. `sas` slots are set aside for the SAS: the CPTS's
# members see them in search (the territory's offer) but only regulators book them.
SAS_AUDIENCE = ("sas", "public")
SEARCH_VISIBILITY: dict[str, tuple[str, ...]] = {
    "regulator": SAS_AUDIENCE,
    "sas_platform": SAS_AUDIENCE,
    "coordinator": ("sas", "cpts", "public"),
    "practice": ("sas", "cpts", "public"),
    "admin": ("sas", "cpts", "public"),
}
BOOKING_VISIBILITY: dict[str, tuple[str, ...]] = {
    "regulator": SAS_AUDIENCE,
    "coordinator": ("cpts", "public"),
    "practice": ("cpts", "public"),
}


def bookable(now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    """THE availability predicate, shared by search, booking, FHIR output and indicators:
    a slot that has not started and is free, or held with a hold that has expired."""
    return and_(
        Slot.start > now,
        or_(
            Slot.status == "free",
            and_(Slot.status == "held", Slot.hold_expires_at <= now),
        ),
    )


def great_circle_km(
    lat: float | ColumnElement[float], lon: float | ColumnElement[float]
) -> ColumnElement[float]:
    """Haversine distance from (lat, lon) to the practice, in km."""
    dlat = func.radians(Practice.lat - lat)
    dlon = func.radians(Practice.lon - lon)
    a = func.power(func.sin(dlat / 2), 2) + func.cos(func.radians(lat)) * func.cos(
        func.radians(Practice.lat)
    ) * func.power(func.sin(dlon / 2), 2)
    return 2 * EARTH_RADIUS_KM * func.asin(func.sqrt(func.least(1.0, a)))


def bounding_box(lat: float, lon: float, radius_km: float) -> dict[str, float]:
    """A cheap, index-friendly box that contains the radius circle."""
    dlat = math.degrees(radius_km / EARTH_RADIUS_KM)
    cos_lat = max(math.cos(math.radians(lat)), 1e-6)
    dlon = min(180.0, math.degrees(radius_km / (EARTH_RADIUS_KM * cos_lat)))
    return {
        "lat_min": lat - dlat,
        "lat_max": lat + dlat,
        "lon_min": lon - dlon,
        "lon_max": lon + dlon,
    }


@dataclass(frozen=True)
class SlotSearch:
    start: datetime
    end: datetime
    now: datetime
    territory_ids: frozenset[uuid.UUID] | None  # None: every territory
    visibilities: tuple[str, ...]
    modality: str | None = None
    commune_insee: str | None = None
    practitioner_id: uuid.UUID | None = None
    near: tuple[float, float] | None = None
    radius_km: float | None = None
    limit: int = 50
    # Keyset cursor: (crisis_rank, start, distance, id) of the last row of the previous page.
    after: tuple[int, datetime, float, uuid.UUID] | None = None

    def shape(self) -> tuple[bool, ...]:
        return (
            self.territory_ids is not None,
            self.modality is not None,
            self.commune_insee is not None,
            self.practitioner_id is not None,
            self.near is not None,
            self.near is not None and self.radius_km is not None,
            self.after is not None,
        )

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "now": self.now,
            "win_start": self.start,
            "win_end": self.end,
            "visibilities": list(self.visibilities),
            "row_limit": self.limit + 1,
        }
        if self.territory_ids is not None:
            params["territory_ids"] = list(self.territory_ids)
        if self.modality is not None:
            params["modality"] = self.modality
        if self.commune_insee is not None:
            params["commune_insee"] = self.commune_insee
        if self.practitioner_id is not None:
            params["practitioner_id"] = self.practitioner_id
        if self.near is not None:
            params["lat"], params["lon"] = self.near
            if self.radius_km is not None:
                params["radius_km"] = self.radius_km
                params.update(bounding_box(*self.near, self.radius_km))
        if self.after is not None:
            (
                params["after_rank"],
                params["after_start"],
                params["after_distance"],
                params["after_id"],
            ) = self.after
        return params


def _p(name: str, type_: Any = None, **kw: Any) -> Any:
    return bindparam(name, type_=type_, **kw)


@lru_cache(maxsize=128)
def _search_shape(
    territories: bool,
    modality: bool,
    commune: bool,
    practitioner: bool,
    near: bool,
    radius: bool,
    after: bool,
) -> Select[*tuple[Any, ...]]:
    """The search statement for one combination of filters, built once and reused with
    bound parameters (building SQLAlchemy expressions costs more than running the query)."""
    # Distances are computed once per candidate practice (a materialised CTE), not once per
    # slot row: a territory has hundreds of practices but tens of thousands of slots.
    lat, lon = _p("lat", Float), _p("lon", Float)
    distance_expr = great_circle_km(lat, lon) if near else literal(0.0, Float)
    territory_ids = _p("territory_ids", ARRAY(Uuid))
    practices = select(Practice.id, distance_expr.label("distance_km"))
    if territories:
        practices = practices.where(Practice.territory_id == any_(territory_ids))
    if commune:
        practices = practices.where(Practice.commune_insee == _p("commune_insee", String))
    if radius:
        practices = practices.where(
            Practice.lat.between(_p("lat_min", Float), _p("lat_max", Float)),
            Practice.lon.between(_p("lon_min", Float), _p("lon_max", Float)),
        )
    nearby = practices.cte("nearby").prefix_with("MATERIALIZED")
    distance = nearby.c.distance_km
    now = _p("now", DateTime(timezone=True))
    # First the page's keys (crisis rank, slot id, start, distance): the candidate slots of the
    # window are sorted as narrow rows, and only the page's rows are then joined to their
    # details. A running crisis' slots come first (the rank), then by start and distance.
    rank = crisis_first()
    page = (
        select(Slot.id, rank.label("crisis_rank"), Slot.start, distance.label("distance_km"))
        .join(Practitioner, Practitioner.id == Slot.practitioner_id)
        .join(nearby, nearby.c.id == Practitioner.practice_id)
        .where(
            Slot.start >= _p("win_start", DateTime(timezone=True)),
            Slot.start < _p("win_end", DateTime(timezone=True)),
            # Repeats the partial index's condition, in literals, so the planner can use it.
            Slot.status.in_([literal_column("'free'"), literal_column("'held'")]),
            bookable(now),
            Slot.visibility == any_(_p("visibilities", ARRAY(String))),
        )
    )
    if radius:
        page = page.where(distance <= _p("radius_km", Float))
    if territories:
        page = page.where(Slot.territory_id == any_(territory_ids))
    if modality:
        page = page.where(Slot.modality == _p("modality", String))
    if practitioner:
        page = page.where(Slot.practitioner_id == _p("practitioner_id", Uuid))
    if after:
        page = page.where(
            tuple_(rank, Slot.start, distance, Slot.id)
            > tuple_(
                _p("after_rank", Integer),
                _p("after_start", DateTime(timezone=True)),
                _p("after_distance", Float),
                _p("after_id", Uuid),
            )
        )
    keys = (
        page.order_by(rank, Slot.start, distance, Slot.id)
        .limit(_p("row_limit", Integer))
        .subquery("page")
    )
    return (
        select(
            Slot.id,
            Slot.start,
            Slot.end,
            Slot.modality,
            Slot.visibility,
            Slot.crisis_id,
            keys.c.crisis_rank,
            Practitioner.id.label("practitioner_id"),
            Practitioner.family_name,
            Practitioner.given_name,
            Practitioner.rpps,
            Practice.id.label("practice_id"),
            Practice.name.label("practice_name"),
            Practice.address,
            Practice.commune_insee,
            CommuneRecord.name.label("commune_name"),  # people read names, not codes
            Practice.lat,
            Practice.lon,
            Territory.timezone,
            keys.c.distance_km,
        )
        .select_from(keys)
        .join(Slot, Slot.id == keys.c.id)
        .join(Practitioner, Practitioner.id == Slot.practitioner_id)
        .join(Practice, Practice.id == Practitioner.practice_id)
        .join(Territory, Territory.id == Slot.territory_id)
        .outerjoin(CommuneRecord, CommuneRecord.insee == Practice.commune_insee)
        .order_by(keys.c.crisis_rank, keys.c.start, keys.c.distance_km, keys.c.id)
    )


def search_statement(q: SlotSearch) -> Select[*tuple[Any, ...]]:
    return _search_shape(*q.shape())


@lru_cache(maxsize=128)
def _driver_shape(shape: tuple[bool, ...]) -> DriverStatement:
    return DriverStatement(_search_shape(*shape))


def search_sql(q: SlotSearch) -> tuple[str, list[Any]]:
    """The search as asyncpg runs it: the SQL text, compiled once per filter combination,
    and its positional arguments. The API and bench/search.py's raw baseline both run this."""
    statement = _driver_shape(q.shape())
    return statement.sql, statement.args(q.params())


async def search_slots(session: AsyncSession, q: SlotSearch) -> list[Any]:
    """The page of slots, as asyncpg records (`row["start"]`), read on the session's own
    connection (`DriverStatement`): the search is the product's hot path."""
    return await _driver_shape(q.shape()).fetch(session, **q.params())


async def first_unavailability_over(
    session: AsyncSession, practitioner_id: uuid.UUID, start: datetime, end: datetime
) -> Any:
    """The practitioner's earliest absence overlapping [start, end) (id, start, end), or None:
    what refuses a surnuméraire, and a second absence over the same time."""
    result = await session.execute(
        select(Unavailability.id, Unavailability.start, Unavailability.end)
        .where(
            Unavailability.practitioner_id == practitioner_id,
            Unavailability.start < end,
            Unavailability.end > start,
        )
        .order_by(Unavailability.start)
        .limit(1)
    )
    return result.first()


# A surnuméraire that still takes the GP's time (the agenda shows it, an absence reports it).
LIVE_OVERBOOKING = (
    Booking.overbooked.is_(True),
    Booking.status.in_(("booked", "honored", "no_show")),
)
