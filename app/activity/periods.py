"""Indicator periods: local weeks, months, quarters and years (ACI years from the contract's
signature date), clipped to the requested range; the figures of a period and the ratios
shared by the JSON, the CSV and the dashboard."""

from __future__ import annotations

import bisect
import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

Granularity = Literal["week", "month", "quarter", "year"]


def anniversary(year: int, signed_on: date) -> date:
    """The contract's anniversary in `year` (28 February for a 29 February signature)."""
    day = min(signed_on.day, calendar.monthrange(year, signed_on.month)[1])
    return date(year, signed_on.month, day)


def aci_year_start(day: date, signed_on: date | None) -> date:
    """The first day of the indicator year holding `day`: the last anniversary of the ACI
    contract's signature, or 1 January when the date is unknown."""
    if signed_on is None:
        return date(day.year, 1, 1)
    this_year = anniversary(day.year, signed_on)
    return this_year if this_year <= day else anniversary(day.year - 1, signed_on)


def period_start(day: date, granularity: Granularity, signed_on: date | None = None) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    if granularity == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return aci_year_start(day, signed_on)


def _add_months(start: date, months: int) -> date:
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, 1)


def next_period(start: date, granularity: Granularity, signed_on: date | None = None) -> date:
    if granularity == "week":
        return start + timedelta(days=7)
    if granularity == "year":
        if signed_on is None:
            return date(start.year + 1, 1, 1)
        return anniversary(start.year + 1, signed_on)
    return _add_months(start, {"month": 1, "quarter": 3}[granularity])


def periods(
    start: date, end: date, granularity: Granularity, signed_on: date | None = None
) -> list[tuple[date, date]]:
    """The periods of [start, end), the first and last clipped to the range: a range that
    ends on 4 December ends its last period there."""
    out = []
    cursor = period_start(start, granularity, signed_on)
    while cursor < end:
        following = next_period(cursor, granularity, signed_on)
        out.append((max(cursor, start), min(following, end)))
        cursor = following
    return out


def offer_units(first: date, last: date, granularity: Granularity) -> list[tuple[str, date]]:
    """[first, last) as units of the offer roll-up: whole weeks (`w`) for weeks, whole months
    (`m`) for longer periods, local days (`d`) for what is left at clipped ends."""
    units: list[tuple[str, date]] = []
    cursor = first
    while cursor < last:
        if granularity == "week" and cursor.weekday() == 0 and cursor + timedelta(7) <= last:
            units.append(("w", cursor))
            cursor += timedelta(days=7)
        elif granularity != "week" and cursor.day == 1 and _add_months(cursor, 1) <= last:
            units.append(("m", cursor))
            cursor = _add_months(cursor, 1)
        else:
            units.append(("d", cursor))
            cursor += timedelta(days=1)
    return units


@dataclass
class Figures:
    period_start: date
    period_end: date
    snp: dict[str, Any] = field(default_factory=dict)
    mt: dict[str, Any] = field(default_factory=dict)
    unmet: dict[str, Any] = field(default_factory=dict)
    crisis: dict[str, Any] = field(default_factory=dict)


def period_of(starts: list[date], last: date, day: date) -> int | None:
    """The index of the period holding a local day (periods starting on `starts`, the last
    ending before `last`), None outside them."""
    if day < starts[0] or day >= last:
        return None
    return bisect.bisect_right(starts, day) - 1


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def fill_rate(taken: int, offered: int) -> float | None:
    """Distinct slots taken ÷ slots offered, never above 1 (a slot withdrawn after it was
    held and then booked is taken but no longer offered). The one formula of the JSON, the
    CSV and the dashboard."""
    return ratio(min(taken, offered), offered)


def per_1000(value: float, population: int | None) -> float | None:
    return round(value * 1000 / population, 3) if population else None
