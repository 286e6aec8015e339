"""Keyset pagination: opaque cursors and the `{items, next_cursor}` envelope."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.bounds import check_instant
from app.errors import ValidationFailed

T = TypeVar("T")
E = TypeVar("E")

LimitQuery = Annotated[int, Query(ge=1, le=500, description="Page size (max 500)")]
DEFAULT_LIMIT = 50
CursorQuery = Annotated[
    str | None, Query(max_length=500, description="`next_cursor` of the previous page")
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps([str(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise _invalid() from exc
    if not isinstance(values, list) or len(values) != size:
        raise _invalid()
    return [str(v) for v in values]


def _invalid() -> ValidationFailed:
    return ValidationFailed.field(["query", "cursor"], "invalid cursor")


# A cursor's values, each checked as the page statement will bind it: a forged cursor is a
# 422, never a number the database cannot hold nor an instant beyond datetime's range.


def cursor_int(value: str, low: int, high: int) -> int:
    """ASCII digits (with an optional minus sign) within [low, high]."""
    if not re.fullmatch(r"-?[0-9]{1,19}", value):
        raise _invalid()
    number = int(value)
    if not low <= number <= high:
        raise _invalid()
    return number


def cursor_float(value: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except ValueError as exc:
        raise _invalid() from exc
    if not (math.isfinite(number) and low <= number <= high):
        raise _invalid()
    return number


def cursor_instant(value: str) -> datetime:
    """An instant with its offset, as this service writes them, within the bounds of dates."""
    try:
        at = check_instant(datetime.fromisoformat(value))
    except ValueError as exc:
        raise _invalid() from exc
    if at.tzinfo is None:
        raise _invalid()
    return at


def cursor_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise _invalid() from exc


def decode_time_id_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    at, ident = decode_cursor(cursor, 2)
    return cursor_instant(at), cursor_uuid(ident)


async def fetch_page(
    session: AsyncSession,
    stmt: Select[E],
    *,
    sort_col: InstrumentedAttribute[datetime],
    id_col: InstrumentedAttribute[uuid.UUID],
    cursor: str | None,
    limit: int,
) -> tuple[list[E], str | None]:
    """Rows of `stmt` after `cursor`, ordered by (sort_col, id); one extra row tells if more."""
    if cursor:
        stmt = stmt.where(tuple_(sort_col, id_col) > tuple_(*decode_time_id_cursor(cursor)))
    rows = list((await session.scalars(stmt.order_by(sort_col, id_col).limit(limit + 1))).all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor([getattr(last, sort_col.key), getattr(last, id_col.key)])
