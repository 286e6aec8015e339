"""MT (médecin traitant) figures: the queue and capacity events replayed once, in order. A
patient keeps the priority and criteria met at registration, so entering and leaving the queue
always count in the same row; remaining places count active GPs only, never below zero. The
proposals made, lapsed and declined, by side (patient, GP) and reason, are counted by local
day of the answer."""

from __future__ import annotations

import bisect
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.periods import Figures, per_1000, ratio

CRITERIA = ("ald", "aged_70", "precarity")
# Who declined a proposal, and why (the codes of `mt_proposal.reason_code`); `unspecified`
# for a decline recorded without them.
DECLINE_SIDES = ("patient", "practitioner", "unspecified")
DECLINE_REASONS = ("distance", "schedule", "preference", "capacity", "other", "unspecified")
# The criteria of each bit mask (1: ALD, 2: 70 or over, 4: precarity).
CRITERIA_SETS = [tuple(c for k, c in enumerate(CRITERIA) if mask >> k & 1) for mask in range(8)]

# MT: every queue and capacity event up to the last period's end, in order.
MT_EVENTS_SQL = """
SELECT e.type, e.at, e.subject_id, e.practitioner_id,
       coalesce((e.data->>'priority')::int, 0) AS priority,
       (CASE WHEN (e.data->>'ald')::boolean THEN 1 ELSE 0 END
        + CASE WHEN (e.data->>'aged_70')::boolean THEN 2 ELSE 0 END
        + CASE WHEN (e.data->>'precarity')::boolean THEN 4 ELSE 0 END) AS criteria,
       (e.data->>'capacity')::int AS capacity,
       (e.data->>'waiting_days')::float AS waiting_days
FROM activity_event e
WHERE e.territory_id = :t AND e.at < :hi
  AND e.type IN ('mt.registered', 'mt.attached', 'mt.withdrawn', 'mt.capacity_set',
                 'practitioner.deleted')
ORDER BY e.at, e.id
"""


# MT: the proposals and their answers, by local day, side and reason.
MT_ANSWERS_SQL = """
SELECT (e.at AT TIME ZONE :tz)::date AS day, e.type,
       coalesce(e.data->>'declined_by', 'unspecified') AS side,
       coalesce(e.data->>'reason_code', 'unspecified') AS reason,
       count(*) AS n
FROM activity_event e
WHERE e.territory_id = :t AND e.at >= :lo AND e.at < :hi
  AND e.type IN ('mt.proposed', 'mt.declined', 'mt.proposal_expired')
GROUP BY 1, 2, 3, 4
"""


@dataclass
class _Request:
    registered_at: datetime
    priority: int
    criteria: tuple[str, ...]
    state: str = "waiting"
    practitioner_id: uuid.UUID | None = None


def _percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (position - low), 1)


async def mt_figures(
    session: AsyncSession,
    p: dict[str, Any],
    figures: list[Figures],
    buckets: list[tuple[date, date]],
    tz: ZoneInfo,
    now: datetime,
    population: int | None,
) -> None:
    """MT figures, replaying the queue and capacity events in order. A patient keeps the
    priority and criteria met at registration, so entering and leaving the queue always
    count in the same row; "at end" figures are taken at the period's end, or now for a
    period not yet over."""
    events = (await session.execute(text(MT_EVENTS_SQL), p)).all()
    requests: dict[uuid.UUID, _Request] = {}
    queue = _Queue()
    capacity: dict[uuid.UUID, int] = {}
    attached_to: dict[uuid.UUID, int] = defaultdict(int)
    e = 0
    for f, (b_start, b_end) in zip(figures, buckets, strict=True):
        lo = datetime.combine(b_start, time(), tz)
        hi = datetime.combine(b_end, time(), tz)
        registered = attached = fragile = 0
        by_criterion = {c: {"registered": 0, "attached": 0} for c in CRITERIA}
        waits: list[float] = []
        while e < len(events) and events[e][1] < hi:
            type_, at, subject, gp, priority, mask, cap, waited = events[e]
            e += 1
            in_period = at >= lo
            if type_ == "mt.capacity_set":
                if gp is not None:
                    capacity[gp] = cap or 0
            elif type_ == "practitioner.deleted":
                capacity.pop(gp, None)
            elif subject is None:
                continue
            elif type_ == "mt.registered":
                r = requests[subject] = _Request(at, priority, CRITERIA_SETS[mask])
                queue.enter(r)
                if in_period:
                    registered += 1
                    for c in r.criteria:
                        by_criterion[c]["registered"] += 1
            elif type_ == "mt.attached":
                r = requests.get(subject) or _unregistered(
                    requests, subject, at, priority, mask, waited
                )
                if r.state == "waiting":
                    queue.leave(r)
                r.state, r.practitioner_id = "attached", gp
                if gp is not None:
                    attached_to[gp] += 1
                if in_period:
                    attached += 1
                    fragile += 1 if r.priority > 0 else 0
                    for c in r.criteria:
                        by_criterion[c]["attached"] += 1
                    waits.append((at - r.registered_at).total_seconds() / 86400)
            elif type_ == "mt.withdrawn" and subject in requests:
                r = requests[subject]
                if r.state == "waiting":
                    queue.leave(r)
                elif r.state == "attached" and r.practitioner_id is not None:
                    attached_to[r.practitioner_id] -= 1
                r.state = "withdrawn"
        as_of = min(hi, now)
        m = f.mt
        m["registered"] = registered
        m["attached"] = attached
        m["fragile_share_of_attached"] = ratio(fragile, attached)
        m["waiting_days_median"] = _percentile(waits, 0.5)
        m["waiting_days_p90"] = _percentile(waits, 0.9)
        m["waiting_at_end"] = len(queue.since)
        m["waiting_at_end_by_priority"] = {str(k): queue.by_priority[k] for k in range(4)}
        m["still_waiting_days_median"] = queue.waited(as_of, 0.5)
        m["still_waiting_days_p90"] = queue.waited(as_of, 0.9)
        m["still_waiting_days_oldest"] = queue.waited(as_of, 1.0)
        m["remaining_capacity_at_end"] = sum(
            max(0, cap - attached_to[gp]) for gp, cap in capacity.items()
        )
        for c in CRITERIA:
            by_criterion[c]["waiting_at_end"] = queue.by_criterion[c]
        m["by_criterion"] = by_criterion
        m["per_1000_inhabitants"] = {
            name: per_1000(m[name], population)
            for name in ("registered", "attached", "waiting_at_end")
        }
    await _answers(session, p, figures, buckets, tz)


async def _answers(
    session: AsyncSession,
    p: dict[str, Any],
    figures: list[Figures],
    buckets: list[tuple[date, date]],
    tz: ZoneInfo,
) -> None:
    """Proposals made and lapsed, and declines by side and reason, in each period."""
    lo = datetime.combine(buckets[0][0], time(), tz)
    rows = await session.execute(text(MT_ANSWERS_SQL), {**p, "lo": lo, "tz": tz.key})
    starts = [b[0] for b in buckets]
    proposed, lapsed = [0] * len(buckets), [0] * len(buckets)
    sides = [dict.fromkeys(DECLINE_SIDES, 0) for _ in buckets]
    reasons = [{s: dict.fromkeys(DECLINE_REASONS, 0) for s in DECLINE_SIDES} for _ in buckets]
    for day, type_, side, reason, n in rows.all():
        i = bisect.bisect_right(starts, day) - 1
        if i < 0 or day >= buckets[i][1]:
            continue
        if type_ == "mt.proposed":
            proposed[i] += n
        elif type_ == "mt.proposal_expired":
            lapsed[i] += n
        else:
            side = side if side in DECLINE_SIDES else "unspecified"
            reason = reason if reason in DECLINE_REASONS else "other"
            sides[i][side] += n
            reasons[i][side][reason] += n
    for i, f in enumerate(figures):
        f.mt["proposals"] = proposed[i]
        f.mt["proposals_lapsed"] = lapsed[i]
        f.mt["declined"] = sum(sides[i].values())
        f.mt["declined_by"] = sides[i]
        f.mt["decline_reasons"] = reasons[i]


class _Queue:
    """The patients waiting: their registration instants (sorted) and counts by priority and
    criterion at registration."""

    def __init__(self) -> None:
        self.since: list[datetime] = []
        self.by_priority: dict[int, int] = defaultdict(int)
        self.by_criterion: dict[str, int] = defaultdict(int)

    def enter(self, r: _Request) -> None:
        bisect.insort(self.since, r.registered_at)
        self._count(r, 1)

    def leave(self, r: _Request) -> None:
        i = bisect.bisect_left(self.since, r.registered_at)
        if i < len(self.since) and self.since[i] == r.registered_at:
            self.since.pop(i)
            self._count(r, -1)

    def _count(self, r: _Request, n: int) -> None:
        self.by_priority[r.priority] += n
        for c in r.criteria:
            self.by_criterion[c] += n

    def waited(self, as_of: datetime, q: float) -> float | None:
        """The q-quantile of the days waited so far (1.0: the oldest), interpolated like
        percentile_cont; the longest wait is the earliest registration."""
        if not self.since:
            return None
        position = (1 - q) * (len(self.since) - 1)
        low = int(position)
        high = min(low + 1, len(self.since) - 1)
        first, second = self.since[low], self.since[high]
        instant = first + (second - first) * (position - low)
        return round(max(0.0, (as_of - instant).total_seconds() / 86400), 1)


def _unregistered(
    requests: dict[uuid.UUID, _Request],
    subject: uuid.UUID,
    at: datetime,
    priority: int,
    mask: int,
    waited: float | None,
) -> _Request:
    """A patient attached without a registration in the log (history imported before the
    log began): registered `waiting_days` earlier, never in this log's queue."""
    since = at - timedelta(days=waited or 0)
    r = requests[subject] = _Request(since, priority, CRITERIA_SETS[mask], state="outside")
    return r
