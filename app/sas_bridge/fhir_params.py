"""What every FHIR search shares: the grammar of its parameters (dates and their prefixes,
ids, RPPS tokens, `_count` and `_offset`) and the count of a paged statement's matches."""

from __future__ import annotations

import operator
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, any_, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.bounds import MAX_FHIR_INTEGER, check_instant
from app.errors import BadRequest, ValidationFailed
from app.sas_bridge import fhir_resources as res

_PREFIXES = ("ge", "gt", "le", "lt", "eq")

DEFAULT_COUNT, MAX_COUNT = 100, 1000


_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def parse_day(value: str, name: str) -> tuple[str, datetime, datetime] | None:
    """A FHIR date without time (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`) with its prefix: the period's
    naive wall-clock bounds [low, high), to be read in each slot's territory zone. None when
    the value has a time (a dateTime)."""
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    raw = value[2:] if value[:2] in _PREFIXES else value
    match = _PARTIAL_DATE.match(raw)
    if match is None:
        return None
    year, month, day = (int(g) if g else None for g in match.groups())
    assert year is not None
    try:
        if day is not None and month is not None:
            low = datetime(year, month, day)
            high = low + timedelta(days=1)
        elif month is not None:
            low = datetime(year, month, 1)
            high = datetime(year + month // 12, month % 12 + 1, 1)
        else:
            low, high = datetime(year, 1, 1), datetime(year + 1, 1, 1)
    except ValueError as exc:
        raise BadRequest(f"{name}: {value!r} is not a FHIR date") from exc
    return prefix, low, high


def parse_date(value: str, name: str) -> tuple[str, datetime]:
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    raw = value[2:] if value[:2] in _PREFIXES else value
    raw = raw.replace(" ", "+")  # a '+' of an offset sent unencoded arrives as a space
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(f"{name}: {value!r} is not a FHIR dateTime") from exc
    if when.tzinfo is None:
        raise BadRequest(f"{name}: {value!r} needs a time zone offset")
    try:
        return prefix, check_instant(when)
    except ValueError as exc:
        raise ValidationFailed.field(["query", name], str(exc)) from exc


_COMPARISONS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "ge": operator.ge,
    "gt": operator.gt,
    "le": operator.le,
    "lt": operator.lt,
    "eq": operator.eq,
}


def date_condition(
    column: Any, prefix: str, when: datetime | ColumnElement[datetime]
) -> ColumnElement[bool]:
    """A FHIR date parameter with its prefix, on a timestamp column."""
    return _COMPARISONS[prefix](column, when)


def paging_number(name: str, value: str) -> int:
    """`_count` (at least 1) or `_offset` (at least 0)."""
    try:
        number = int(value)
    except ValueError as exc:
        raise BadRequest(f"{name}: {value!r} is not an integer") from exc
    if number < 0 or (name == "_count" and number == 0):
        raise BadRequest(f"{name}: must be positive")
    if number > MAX_FHIR_INTEGER:
        raise ValidationFailed.field(
            ["query", name], f"at most {MAX_FHIR_INTEGER} (a FHIR integer)"
        )
    return number


def parse_id(value: str, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value.rsplit("/", 1)[-1])
    except ValueError as exc:
        raise BadRequest(f"{name}: {value!r} is not a known id") from exc


def rpps_value(token: str) -> str | None:
    """`system|value` or `value`; the value with or without its `8` prefix. Another system,
    or something that is not an RPPS, matches nothing."""
    system, _, value = token.rpartition("|")
    if system and system != res.RPPS_SYSTEM:
        return None
    value = value.strip()
    if len(value) == 12 and value.startswith("8") and value.isdigit():
        return value[1:]
    if len(value) == 11 and value.isdigit():
        return value
    return None


async def count_only(session: AsyncSession, stmt: Any, values: dict[str, Any] | None = None) -> int:
    inner = stmt.limit(None).offset(None).order_by(None).subquery()
    values = {k: v for k, v in (values or {}).items() if k not in ("limit", "offset")}
    return int(await session.scalar(select(func.count()).select_from(inner), values) or 0)


def any_param(name: str, item: Any) -> Any:
    """`= ANY(:name)`: one bound array parameter, whatever the number of values."""
    return any_(bindparam(name, type_=ARRAY(item)))
