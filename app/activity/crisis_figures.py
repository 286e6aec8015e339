"""The crisis-response figures of the indicators (issue 29), from the crisis tables at their
end state (not from events): crises declared, volunteers called, pledges honoured, capacity
opened within 2 h / 24 h of the declaration, crisis slots opened and booked.

By local day of the territory: a crisis by the day it was declared, a call by the day it was
sent, a crisis slot by the day it starts. The queries take an optional crisis id
(`:crisis`, NULL for all of the territory's crises): the crisis report (app.crisis.report)
counts with the same SQL, so its totals are the indicators' over a period covering it.
The definitions are in docs/indicators.md."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from app.activity.periods import Figures, period_of, ratio

DECLARED_SQL = """
SELECT (c.declared_at AT TIME ZONE :tz)::date AS day, count(*) AS n
FROM crisis c
WHERE c.territory_id = :t AND c.declared_at >= :lo AND c.declared_at < :hi
  AND (CAST(:crisis AS uuid) IS NULL OR c.id = :crisis)
GROUP BY 1
"""

# Each call once, by the local day it was sent: opened (its GP opened capacity through the
# link), within 2 h / 24 h of the crisis's declaration.
CALLS_SQL = """
SELECT (k.sent_at AT TIME ZONE :tz)::date AS day, count(*) AS called,
       count(*) FILTER (WHERE k.opened_at IS NOT NULL) AS honoured,
       count(*) FILTER (WHERE k.opened_at < c.declared_at + interval '2 hours') AS within_2h,
       count(*) FILTER (WHERE k.opened_at < c.declared_at + interval '24 hours') AS within_24h
FROM crisis_call k JOIN crisis c ON c.id = k.crisis_id
WHERE c.territory_id = :t AND k.sent_at >= :lo AND k.sent_at < :hi
  AND (CAST(:crisis AS uuid) IS NULL OR c.id = :crisis)
GROUP BY 1
"""

# Crisis slots by the local day they start, at their end state: a slot closed (unavailable)
# is no capacity; booked when a standing booking (booked, honored, no-show: as
# `snp.slots_taken` counts them; at most one a slot, uq_booking_active_slot) holds it.
SLOTS_SQL = """
SELECT (s.start AT TIME ZONE :tz)::date AS day,
       count(*) FILTER (WHERE s.status <> 'unavailable') AS opened,
       count(b.id) AS booked,
       count(*) FILTER (WHERE b.status = 'honored') AS honoured,
       count(*) FILTER (WHERE b.status = 'no_show') AS no_show
FROM slot s JOIN crisis c ON c.id = s.crisis_id
     LEFT JOIN booking b ON b.slot_id = s.id AND b.status IN ('booked', 'honored', 'no_show')
WHERE c.territory_id = :t AND s.start >= :lo AND s.start < :hi
  AND (CAST(:crisis AS uuid) IS NULL OR c.id = :crisis)
GROUP BY 1
"""
BINDS = (bindparam("crisis", type_=Uuid), bindparam("t", type_=Uuid))


def statement(sql: str) -> TextClause:
    return text(sql).bindparams(*BINDS)


async def by_day(
    session: AsyncSession, sql: str, params: dict[str, Any]
) -> dict[date, dict[str, int]]:
    """One of the queries above, as {local day: {column: count}}."""
    out: dict[date, dict[str, int]] = {}
    for row in (await session.execute(statement(sql), params)).mappings():
        out[row["day"]] = {k: int(v) for k, v in row.items() if k != "day"}
    return out


async def crisis_figures(
    session: AsyncSession, p: dict[str, Any], figures: list[Figures], tz: str
) -> None:
    """Fill each period's `crisis` section."""
    starts = [f.period_start for f in figures]
    last = figures[-1].period_end
    params = {"t": p["t"], "tz": tz, "lo": p["lo"], "hi": p["hi"], "crisis": None}
    counts: list[Counter[str]] = [Counter() for _ in figures]
    for sql, prefix in ((DECLARED_SQL, "declared:"), (CALLS_SQL, ""), (SLOTS_SQL, "slots:")):
        for day, row in (await by_day(session, sql, params)).items():
            i = period_of(starts, last, day)
            if i is not None:
                counts[i].update({prefix + k: v for k, v in row.items()})
    for i, f in enumerate(figures):
        c = counts[i]
        called = c["called"]
        f.crisis = {
            "crises_declared": c["declared:n"],
            "volunteers_called": called,
            "pledges_honoured": c["honoured"],
            "share_honoured": ratio(c["honoured"], called),
            "opened_within_2h": c["within_2h"],
            "share_opened_within_2h": ratio(c["within_2h"], called),
            "opened_within_24h": c["within_24h"],
            "share_opened_within_24h": ratio(c["within_24h"], called),
            "slots_opened": c["slots:opened"],
            "slots_booked": c["slots:booked"],
        }
