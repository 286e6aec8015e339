"""The unmet-demand figures of the indicators, from the activity log alone: SAS requests =
placed + unmet, the share placed (and within 48 h), unmet by reason, commune and local hour,
empty searches apart, calls for slots and the slots they produced (docs/indicators.md).

Placed requests are the SNP section's SAS bookings and surnuméraires (`booking_day`, by the
local day they were made); unmet ones the `unmet.recorded` events, by the local day and hour
they were recorded; calls the `slots.call_sent` events, by the local day they were sent."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.periods import Figures, period_of, ratio

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

# Declared unmet requests and counted empty searches per local day, hour, reason, commune.
UNMET_SQL = """
SELECT (e.at AT TIME ZONE :tz)::date AS day,
       extract(hour FROM e.at AT TIME ZONE :tz)::int AS hour,
       e.type, e.data->>'reason' AS reason, e.data->>'commune_insee' AS commune, count(*) AS n
FROM activity_event e
WHERE e.territory_id = :t AND e.type IN ('unmet.recorded', 'unmet.empty_search')
  AND e.at >= :lo AND e.at < :hi
GROUP BY 1, 2, 3, 4, 5
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

CALLS_SQL = PRODUCED_SQL.replace(
    "{calls}",
    "SELECT c.id AS key, c.id AS eid, c.at, c.practitioner_id, "
    "(c.at AT TIME ZONE :tz)::date AS day "
    "FROM activity_event c WHERE c.territory_id = :t AND c.type = 'slots.call_sent' "
    "AND c.at >= :lo AND c.at < :hi",
)


async def unmet_figures(
    session: AsyncSession, p: dict[str, Any], figures: list[Figures], tz: str
) -> None:
    """Fill each period's `unmet` section; the SNP section must be filled already."""
    starts = [f.period_start for f in figures]
    last = figures[-1].period_end
    params = {"t": p["t"], "tz": tz, "lo": p["lo"], "hi": p["hi"]}
    declared: list[Counter[str]] = [Counter() for _ in figures]
    reasons: list[Counter[str]] = [Counter() for _ in figures]
    hours: list[Counter[str]] = [Counter() for _ in figures]
    communes: list[Counter[str]] = [Counter() for _ in figures]
    for row in await session.execute(text(UNMET_SQL), params):
        i = period_of(starts, last, row.day)
        if i is None:
            continue
        if row.type == "unmet.empty_search":
            declared[i]["empty"] += row.n
            continue
        declared[i]["unmet"] += row.n
        reasons[i][row.reason] += row.n
        hours[i][f"{row.hour:02d}"] += row.n
        communes[i][row.commune or "inconnue"] += row.n
    calls: list[Counter[str]] = [Counter() for _ in figures]
    for row in await session.execute(text(CALLS_SQL), params):
        i = period_of(starts, last, row.day)
        if i is not None:
            calls[i]["sent"] += 1
            calls[i]["produced"] += int(row.produced)

    for i, f in enumerate(figures):
        placed = int(f.snp["slots_booked_by_sas"]) + int(f.snp["overbooked"])
        unmet = declared[i]["unmet"]
        requests = placed + unmet
        within_48h = int(f.snp["booked_within_48h"])
        f.unmet = {
            "sas_requests": requests,
            "placed": placed,
            "unmet": unmet,
            "share_placed": ratio(placed, requests),
            "placed_within_48h": within_48h,
            "share_placed_within_48h": ratio(within_48h, requests),
            "empty_searches": declared[i]["empty"],
            "unmet_by_reason": {r: reasons[i][r] for r in REASONS},
            "unmet_by_hour": {h: hours[i][h] for h in HOURS},
            "unmet_by_commune": dict(sorted(communes[i].items())),
            "calls_sent": calls[i]["sent"],
            "slots_from_calls": calls[i]["produced"],
        }
