"""The one availability predicate, and the slot search built on it."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Unpack

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory.models import Practice, Practitioner, Territory
from app.scheduling.models import Slot

EARTH_RADIUS_KM = 6371.0088


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


def great_circle_km(lat: float, lon: float) -> ColumnElement[float]:
    """Haversine distance from (lat, lon) to the practice, in km."""
    dlat = func.radians(Practice.lat - lat)
    dlon = func.radians(Practice.lon - lon)
    a = func.power(func.sin(dlat / 2), 2) + math.cos(math.radians(lat)) * func.cos(
        func.radians(Practice.lat)
    ) * func.power(func.sin(dlon / 2), 2)
    return 2 * EARTH_RADIUS_KM * func.asin(func.sqrt(func.least(1.0, a)))


def bounding_box(lat: float, lon: float, radius_km: float) -> ColumnElement[bool]:
    """A cheap, index-friendly prefilter that contains the radius circle."""
    dlat = math.degrees(radius_km / EARTH_RADIUS_KM)
    cos_lat = max(math.cos(math.radians(lat)), 1e-6)
    dlon = min(180.0, math.degrees(radius_km / (EARTH_RADIUS_KM * cos_lat)))
    return and_(
        Practice.lat.between(lat - dlat, lat + dlat),
        Practice.lon.between(lon - dlon, lon + dlon),
    )


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
    after: tuple[datetime, float, uuid.UUID] | None = None  # keyset cursor


def search_statement(q: SlotSearch) -> Select[Unpack[tuple[Any, ...]]]:
    distance: ColumnElement[float] = (
        great_circle_km(*q.near) if q.near is not None else literal(0.0)
    )
    stmt = (
        select(
            Slot.id,
            Slot.start,
            Slot.end,
            Slot.modality,
            Slot.visibility,
            Practitioner.id.label("practitioner_id"),
            Practitioner.family_name,
            Practitioner.given_name,
            Practitioner.rpps,
            Practice.id.label("practice_id"),
            Practice.name.label("practice_name"),
            Practice.address,
            Practice.commune_insee,
            Practice.lat,
            Practice.lon,
            Territory.timezone,
            distance.label("distance_km"),
        )
        .join(Practitioner, Practitioner.id == Slot.practitioner_id)
        .join(Practice, Practice.id == Practitioner.practice_id)
        .join(Territory, Territory.id == Slot.territory_id)
        .where(
            Slot.start >= q.start,
            Slot.start < q.end,
            # Repeats the partial index's condition so the planner can use it.
            Slot.status.in_(("free", "held")),
            bookable(q.now),
            Slot.visibility.in_(q.visibilities),
        )
    )
    if q.territory_ids is not None:
        stmt = stmt.where(Slot.territory_id.in_(q.territory_ids))
    if q.modality is not None:
        stmt = stmt.where(Slot.modality == q.modality)
    if q.commune_insee is not None:
        stmt = stmt.where(Practice.commune_insee == q.commune_insee)
    if q.practitioner_id is not None:
        stmt = stmt.where(Slot.practitioner_id == q.practitioner_id)
    if q.near is not None and q.radius_km is not None:
        stmt = stmt.where(bounding_box(*q.near, q.radius_km), distance <= q.radius_km)
    if q.after is not None:
        stmt = stmt.where(tuple_(Slot.start, distance, Slot.id) > tuple_(*q.after))
    return stmt.order_by(Slot.start, distance, Slot.id).limit(q.limit + 1)


async def search_slots(session: AsyncSession, q: SlotSearch) -> list[Any]:
    return list((await session.execute(search_statement(q))).all())
