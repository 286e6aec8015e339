"""The slot search: the window and filters checked, one statement (queries.py), a cursor."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import now_utc
from app.errors import ValidationFailed
from app.pagination import (
    cursor_float,
    cursor_instant,
    cursor_int,
    cursor_uuid,
    decode_cursor,
    encode_cursor,
)
from app.scheduling.queries import BOOKING_VISIBILITY, SEARCH_VISIBILITY, SlotSearch, search_slots
from app.security import Caller

MAX_SEARCH_WINDOW = timedelta(days=7)
DEFAULT_SEARCH_WINDOW = timedelta(hours=48)


async def search(
    session: AsyncSession,
    caller: Caller,
    *,
    start: datetime | None,
    end: datetime | None,
    modality: str | None,
    commune_insee: str | None,
    near: tuple[float, float] | None,
    radius_km: float | None,
    practitioner_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
    bookable_only: bool = False,
) -> tuple[list[Any], str | None]:
    """Bookable slots visible to the caller: those opened for a running crisis first, then
    by start and distance; with `bookable_only`, only those the caller may book itself (the
    CPTS's members: not the SAS's slots)."""
    caller.require(*SEARCH_VISIBILITY)
    now = now_utc()
    start = start or now
    end = end or start + DEFAULT_SEARCH_WINDOW
    if end <= start:
        raise ValidationFailed.field(["query", "to"], "must be after from")
    if end - start > MAX_SEARCH_WINDOW:
        raise ValidationFailed.field(["query", "to"], "the window is at most 7 days")
    if radius_km is not None and near is None:
        raise ValidationFailed.field(["query", "radius_km"], "needs near=lat,lon")
    after = None
    if cursor:
        after = decode_search_cursor(cursor)
    q = SlotSearch(
        start=max(start, now),
        end=end,
        now=now,
        territory_ids=None if caller.instance_wide else caller.territory_ids,
        visibilities=(
            BOOKING_VISIBILITY.get(caller.role, ())
            if bookable_only
            else SEARCH_VISIBILITY[caller.role]
        ),
        modality=modality,
        commune_insee=commune_insee,
        practitioner_id=practitioner_id,
        near=near,
        radius_km=radius_km,
        limit=limit,
        after=after,
    )
    rows = await search_slots(session, q)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(
            [
                last["crisis_rank"],
                last["start"].isoformat(),
                repr(last["distance_km"]),
                last["id"],
            ]
        )
    return rows, next_cursor


def decode_search_cursor(cursor: str) -> tuple[int, datetime, float, uuid.UUID]:
    """The last row's keys: its crisis rank (0: a running crisis' slot), start, distance, id."""
    rank, at, distance, ident = decode_cursor(cursor, 4)
    # No two points of the Earth are more than half its circumference (20,037.5 km) apart.
    return (
        cursor_int(rank, 0, 1),
        cursor_instant(at),
        cursor_float(distance, 0.0, 20_040.0),
        cursor_uuid(ident),
    )
