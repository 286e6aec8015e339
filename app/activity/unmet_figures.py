"""The unmet-demand figures of the indicators, from the activity log alone: SAS requests =
placed + unmet, the share placed (and within 48 h), unmet by reason, commune and local hour,
empty searches apart, calls for slots and the slots they produced (docs/indicators.md).

Placed requests are the SNP section's SAS bookings and surnuméraires (`booking_day`, by the
local day they were made); unmet ones the `unmet.recorded` events, by the local day and hour
they were recorded; calls the `slots.call_sent` events, by the local day they were sent.
Each is counted per period in SQL (GROUP BY the period of its local day)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import ARRAY, Date, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.periods import Figures, ratio

REASONS = (
    "no_slot",
    "no_suitable_slot",
    "too_far",
    "too_late",
    "modality_unavailable",
    "patient_refused",
    "other",
)
HOURS = tuple(f"{h:02d}" for h in range(24))

# Declared unmet requests and counted empty searches per period, in one pass: the count of
# each type (`dim` 'type'), and the declared ones by reason, commune and local hour (empty
# searches have none: their NULL rows are left out). An event's period is that of its local
# day: `width_bucket` over `:bounds`, the periods' first days and the last one's end (-1 and
# len(periods) would be days outside them, which [lo, hi) should leave none of).
UNMET_SQL = """
WITH e AS (
    SELECT width_bucket((e.at AT TIME ZONE :tz)::date, :bounds) - 1 AS period, e.type,
           CASE WHEN e.type = 'unmet.recorded' THEN e.data->>'reason' END AS reason,
           CASE WHEN e.type = 'unmet.recorded'
                THEN coalesce(nullif(e.data->>'commune_insee', ''), 'inconnue') END AS commune,
           CASE WHEN e.type = 'unmet.recorded'
                THEN to_char(e.at AT TIME ZONE :tz, 'HH24') END AS hour
    FROM activity_event e
    WHERE e.territory_id = :t AND e.type IN ('unmet.recorded', 'unmet.empty_search')
      AND e.at >= :lo AND e.at < :hi
)
SELECT period, CASE GROUPING(type, reason, commune, hour)
                   WHEN 11 THEN 'reason' WHEN 13 THEN 'commune' WHEN 14 THEN 'hour' ELSE 'type'
               END AS dim,
       coalesce(reason, commune, hour, type) AS key, count(*) AS n
FROM e
GROUP BY GROUPING SETS ((period, type), (period, reason), (period, commune), (period, hour))
HAVING coalesce(reason, commune, hour, type) IS NOT NULL
"""

# The SAS-visible slots a called GP published in the 24 h after a call (its later events):
# `slots.offered` events of visibility sas or public, save those of the job that extends
# rules over the horizon every night (neither a rule nor an author: nobody asked for them).
# `{calls}` selects the calls (key, event id, at, practitioner_id, day); each reads its GP's
# events through the partial index ix_activity_event_published_practitioner_at (0026).
PRODUCED_SQL = """
WITH calls AS ({calls})
SELECT c.key, c.day, coalesce((
    SELECT sum((d.value->>'slots')::int)
    FROM activity_event o, jsonb_each(o.data->'days') d
    WHERE o.type = 'slots.offered' AND (o.subject_id IS NOT NULL OR o.actor_key_id IS NOT NULL)
      AND o.practitioner_id = c.practitioner_id
      AND o.at >= c.at AND o.at < c.at + interval '24 hours' AND (o.at, o.id) > (c.at, c.eid)
      AND o.territory_id = :t AND o.data->>'visibility' IN ('sas', 'public')
), 0) AS produced
FROM calls c
"""

# The calls of each period (of the local day they were sent) and the slots they produced.
CALLS_SQL = """
SELECT width_bucket(c.day, :bounds) - 1 AS period, count(*) AS sent, sum(c.produced) AS produced
FROM ({produced}) c
GROUP BY 1
""".replace(
    "{produced}",
    PRODUCED_SQL.replace(
        "{calls}",
        "SELECT c.id AS key, c.id AS eid, c.at, c.practitioner_id, "
        "(c.at AT TIME ZONE :tz)::date AS day "
        "FROM activity_event c WHERE c.territory_id = :t AND c.type = 'slots.call_sent' "
        "AND c.at >= :lo AND c.at < :hi",
    ),
)
BINDS = (bindparam("bounds", type_=ARRAY(Date)),)


async def unmet_figures(
    session: AsyncSession, p: dict[str, Any], figures: list[Figures], tz: str
) -> None:
    """Fill each period's `unmet` section; the SNP section must be filled already."""
    bounds = [f.period_start for f in figures] + [figures[-1].period_end]
    params = {"t": p["t"], "tz": tz, "lo": p["lo"], "hi": p["hi"], "bounds": bounds}
    counts: list[dict[str, Counter[str]]] = [
        {dim: Counter() for dim in ("type", "reason", "commune", "hour")} for _ in figures
    ]
    inside = range(len(figures))
    for row in await session.execute(text(UNMET_SQL).bindparams(*BINDS), params):
        if row.period in inside:
            counts[row.period][row.dim][row.key] = int(row.n)
    calls: list[tuple[int, int]] = [(0, 0)] * len(figures)
    for row in await session.execute(text(CALLS_SQL).bindparams(*BINDS), params):
        if row.period in inside:
            calls[row.period] = (int(row.sent), int(row.produced))

    for f, c, (sent, produced) in zip(figures, counts, calls, strict=True):
        placed = int(f.snp["slots_booked_by_sas"]) + int(f.snp["overbooked"])
        unmet = c["type"]["unmet.recorded"]
        requests = placed + unmet
        within_48h = int(f.snp["booked_within_48h"])
        f.unmet = {
            "sas_requests": requests,
            "placed": placed,
            "unmet": unmet,
            "share_placed": ratio(placed, requests),
            "placed_within_48h": within_48h,
            "share_placed_within_48h": ratio(within_48h, requests),
            "empty_searches": c["type"]["unmet.empty_search"],
            "unmet_by_reason": {r: c["reason"][r] for r in REASONS},
            "unmet_by_hour": {h: c["hour"][h] for h in HOURS},
            "unmet_by_commune": dict(sorted(c["commune"].items())),
            "calls_sent": sent,
            "slots_from_calls": produced,
        }
