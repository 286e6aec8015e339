"""Offer against demand for the gap map and the unmet-demand figures. Counted by end state
from the tables: a slot once (SAS-visible, published, not made unavailable), a SAS request
once (a booking by a regulator or the national platform still booked or seen, a surnuméraire,
or a declared unmet request). Hours are local hours of the territory's zone."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# source, commune, ISO day of week (1 = Monday), local hour, count. Offer by the slot's start;
# demand by the time the request was made (booked, or recorded); a placed request counts in
# the patient's commune when known, else the practice's.
CELLS_SQL = """
SELECT 'offer' AS source, p.commune_insee AS commune,
       extract(isodow FROM s.start AT TIME ZONE :tz)::int AS dow,
       extract(hour FROM s.start AT TIME ZONE :tz)::int AS hour, count(*) AS n
FROM slot s
JOIN practitioner gp ON gp.id = s.practitioner_id
JOIN practice p ON p.id = gp.practice_id
WHERE s.territory_id = :t AND s.visibility IN ('sas', 'public') AND s.status <> 'unavailable'
  AND s.start >= :start AND s.start < :end
GROUP BY 1, 2, 3, 4
UNION ALL
SELECT CASE WHEN b.overbooked THEN 'overbooked' ELSE 'placed' END,
       coalesce(b.patient_commune_insee, p.commune_insee),
       extract(isodow FROM coalesce(b.booked_at, b.created_at) AT TIME ZONE :tz)::int,
       extract(hour FROM coalesce(b.booked_at, b.created_at) AT TIME ZONE :tz)::int, count(*)
FROM booking b
JOIN practice p ON p.id = b.practice_id
WHERE b.territory_id = :t AND b.status IN ('booked', 'honored', 'no_show')
  AND (b.regulator_id IS NOT NULL OR b.operator_account_id IS NOT NULL)
  AND coalesce(b.booked_at, b.created_at) >= :start AND coalesce(b.booked_at, b.created_at) < :end
GROUP BY 1, 2, 3, 4
UNION ALL
SELECT CASE WHEN u.kind = 'declared' THEN 'unmet' ELSE 'empty_search' END,
       u.commune_insee,
       extract(isodow FROM u.recorded_at AT TIME ZONE :tz)::int,
       extract(hour FROM u.recorded_at AT TIME ZONE :tz)::int, count(*)
FROM unmet_request u
WHERE u.territory_id = :t AND u.recorded_at >= :start AND u.recorded_at < :end
GROUP BY 1, 2, 3, 4
"""

PLACED_48H_SQL = """
SELECT count(*) FROM booking b
WHERE b.territory_id = :t AND b.status IN ('booked', 'honored', 'no_show')
  AND (b.regulator_id IS NOT NULL OR b.operator_account_id IS NOT NULL)
  AND coalesce(b.booked_at, b.created_at) >= :start AND coalesce(b.booked_at, b.created_at) < :end
  AND b.start <= coalesce(b.booked_at, b.created_at) + interval '48 hours'
"""

REASONS_SQL = """
SELECT reason, count(*) FROM unmet_request
WHERE territory_id = :t AND kind = 'declared' AND recorded_at >= :start AND recorded_at < :end
GROUP BY reason
"""

# Offer, placed (slots and surnuméraires) and declared unmet per ISO week, local time: the
# Monday of the week (the same predicates as the cells).
WEEKS_SQL = """
SELECT 'offer' AS source, date_trunc('week', s.start AT TIME ZONE :tz)::date AS week, count(*)
FROM slot s
WHERE s.territory_id = :t AND s.visibility IN ('sas', 'public') AND s.status <> 'unavailable'
  AND s.start >= :start AND s.start < :end
GROUP BY 1, 2
UNION ALL
SELECT 'placed', date_trunc('week', coalesce(b.booked_at, b.created_at) AT TIME ZONE :tz)::date,
       count(*)
FROM booking b
WHERE b.territory_id = :t AND b.status IN ('booked', 'honored', 'no_show')
  AND (b.regulator_id IS NOT NULL OR b.operator_account_id IS NOT NULL)
  AND coalesce(b.booked_at, b.created_at) >= :start AND coalesce(b.booked_at, b.created_at) < :end
GROUP BY 1, 2
UNION ALL
SELECT 'unmet', date_trunc('week', u.recorded_at AT TIME ZONE :tz)::date, count(*)
FROM unmet_request u
WHERE u.territory_id = :t AND u.kind = 'declared' AND u.recorded_at >= :start
  AND u.recorded_at < :end
GROUP BY 1, 2
"""

K = TypeVar("K")
SOURCES = ("offer", "placed", "overbooked", "unmet", "empty_search")
NO_COMMUNE = "inconnue"


@dataclass
class Cell:
    offer: int = 0
    placed: int = 0
    overbooked: int = 0
    unmet: int = 0
    empty_search: int = 0

    @property
    def demand(self) -> int:
        """SAS requests: placed (slots and surnuméraires) and unmet."""
        return self.placed + self.overbooked + self.unmet

    @property
    def gap(self) -> int:
        """Demand beyond the offer (0 when the offer covers it)."""
        return max(self.demand - self.offer, 0)


@dataclass
class Week:
    offer: int = 0
    placed: int = 0
    unmet: int = 0


@dataclass
class GapMap:
    """Offer and demand per (commune, day of week, hour), with its two projections."""

    cells: dict[tuple[str, int, int], Cell] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    placed_within_48h: int = 0
    # Monday of each ISO week (local) → offer, placed (slots and surnuméraires), unmet.
    weeks: dict[date, Week] = field(default_factory=dict)

    def _sum(self, key: Callable[[tuple[str, int, int]], K]) -> dict[K, Cell]:
        out: dict[K, Cell] = defaultdict(Cell)
        for k, cell in self.cells.items():
            target = out[key(k)]
            for name in SOURCES:
                setattr(target, name, getattr(target, name) + getattr(cell, name))
        return dict(out)

    def by_commune(self) -> dict[str, Cell]:
        return self._sum(lambda k: k[0])

    def by_hour_of_week(self) -> dict[tuple[int, int], Cell]:
        return self._sum(lambda k: (k[1], k[2]))

    def total(self) -> Cell:
        return self._sum(lambda k: "all").get("all", Cell())


async def gap_map(
    session: AsyncSession, territory_id: uuid.UUID, timezone: str, start: datetime, end: datetime
) -> GapMap:
    params = {"t": territory_id, "tz": timezone, "start": start, "end": end}
    result = GapMap()
    for source, commune, dow, hour, n in await session.execute(text(CELLS_SQL), params):
        cell = result.cells.setdefault((commune or NO_COMMUNE, dow, hour), Cell())
        setattr(cell, source, getattr(cell, source) + int(n))
    result.reasons = {r: int(n) for r, n in await session.execute(text(REASONS_SQL), params)}
    result.placed_within_48h = int(await session.scalar(text(PLACED_48H_SQL), params) or 0)
    for source, week, n in await session.execute(text(WEEKS_SQL), params):
        counts = result.weeks.setdefault(week, Week())
        setattr(counts, source, getattr(counts, source) + int(n))
    result.weeks = dict(sorted(result.weeks.items()))
    return result


def unmet_by_hour(m: GapMap) -> dict[str, int]:
    """Declared unmet requests by local hour of the day ("00".."23")."""
    counts: Counter[str] = Counter()
    for (_, _, hour), cell in m.cells.items():
        if cell.unmet:
            counts[f"{hour:02d}"] += cell.unmet
    return dict(sorted(counts.items()))
