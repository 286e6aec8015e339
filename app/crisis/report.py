"""The report of one crisis (the dashboard during it, the ARS's report after it): by local day
of the territory from its start to its end (or today while it runs), the crisis slots opened
and created, the plan's pledge, the bookings on them at their end state, the unmet requests
in the communes concerned; the calls (who, when, opened when); the timeline.

The slot and booking counts use the indicators' queries (app.activity.crisis_figures), so
the report's totals equal the `crisis` figures of `/v1/indicators` over a period covering
the crisis. Definitions: docs/crisis-report.md."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.crisis_figures import SLOTS_SQL, by_day
from app.crisis.models import Crisis, CrisisCall, CrisisPlan
from app.crisis.plan_schemas import PlanDocument
from app.crisis.report_schemas import (
    CrisisReport,
    CrisisSummary,
    ReportCall,
    ReportDay,
    ReportTotals,
    TimelineEntry,
)
from app.directory.models import Practice, Practitioner, Territory
from app.scheduling.models import Slot
from app.unmet_demand.models import REASONS

# A report covers at most ten years of days (a crisis is days or weeks long).
MAX_DAYS = 3660

CREATED_SQL = """
SELECT (s.created_at AT TIME ZONE :tz)::date AS day, count(*) AS n
FROM slot s WHERE s.crisis_id = :crisis GROUP BY 1
"""

# Cancelled bookings of the crisis's slots, by the slot's local day (a booking starts when
# its slot does: the territory's bookings of the report's days, ix_booking_territory_start).
CANCELLED_SQL = """
SELECT (s.start AT TIME ZONE :tz)::date AS day, count(*) AS cancelled
FROM booking b JOIN slot s ON s.id = b.slot_id
WHERE b.territory_id = :t AND b.start >= :lo AND b.start < :hi AND b.status = 'cancelled'
  AND s.crisis_id = :crisis
GROUP BY 1
"""

# Unmet requests recorded while the crisis ran, in its communes (all of the territory's
# when it names none), by local day, kind and reason.
UNMET_SQL = """
SELECT (u.recorded_at AT TIME ZONE :tz)::date AS day, u.kind, u.reason,
       coalesce(u.commune_insee, 'inconnue') AS commune, count(*) AS n
FROM unmet_request u
WHERE u.territory_id = :t AND u.recorded_at >= :lo AND u.recorded_at < :hi
  AND (cardinality(CAST(:communes AS varchar[])) = 0
       OR u.commune_insee = ANY(CAST(:communes AS varchar[])))
GROUP BY 1, 2, 3, 4
"""


def summary(crisis: Crisis) -> CrisisSummary:
    return CrisisSummary(
        id=crisis.id,
        territory_id=crisis.territory_id,
        kind=crisis.kind,
        title=crisis.title,
        communes=list(crisis.communes or []),
        started_at=crisis.started_at,
        expected_end_at=crisis.expected_end_at,
        declared_at=crisis.declared_at,
        ended_at=crisis.ended_at,
        running=crisis.ended_at is None,
    )


def pledge_by_weekday(document: dict[str, Any] | None) -> dict[int, int]:
    """Slots pledged per ISO weekday: over the volunteers' pledges whose days include it,
    floor((end - start) / slot length)."""
    out: Counter[int] = Counter()
    if not document:
        return out
    try:
        plan = PlanDocument.model_validate(document)
    except ValidationError:
        return out
    for volunteer in plan.volunteers:
        for p in volunteer.pledges:
            minutes = (p.end_time.hour * 60 + p.end_time.minute) - (
                p.start_time.hour * 60 + p.start_time.minute
            )
            for weekday in p.weekdays:
                out[weekday] += minutes // p.slot_minutes
    return out


def _minutes(later: datetime | None, earlier: datetime) -> int | None:
    return None if later is None else int((later - earlier).total_seconds() // 60)


def _day_span(
    crisis: Crisis, zone: ZoneInfo, now: datetime, slot_span: Sequence[datetime | None]
) -> tuple[date, date]:
    """First and last local day: from the start (or the declaration, if earlier) to the end
    (or today), widened to the days every crisis slot starts and was created on."""
    first = min(crisis.started_at, crisis.declared_at).astimezone(zone).date()
    last = (crisis.ended_at or now).astimezone(zone).date()
    for at in slot_span:
        if at is not None:
            local_day = at.astimezone(zone).date()
            first, last = min(first, local_day), max(last, local_day)
    last = max(first, last)
    return max(first, last - timedelta(days=MAX_DAYS - 1)), last


async def _calls(session: AsyncSession, crisis: Crisis, zone: ZoneInfo) -> list[ReportCall]:
    rows = await session.execute(
        select(CrisisCall, Practitioner, Practice)
        .join(Practitioner, Practitioner.id == CrisisCall.practitioner_id)
        .join(Practice, Practice.id == CrisisCall.practice_id, isouter=True)
        .where(CrisisCall.crisis_id == crisis.id)
        .order_by(CrisisCall.sent_at, Practitioner.family_name, Practitioner.id)
    )
    return [
        ReportCall(
            practitioner_id=gp.id,
            practitioner=f"Dr {gp.given_name} {gp.family_name}",
            practice_id=call.practice_id,
            practice=practice.name if practice is not None else "",
            sent_at=call.sent_at.astimezone(zone),
            mail_status=call.mail_status,
            opened_at=call.opened_at.astimezone(zone) if call.opened_at else None,
            minutes_after_call=_minutes(call.opened_at, call.sent_at),
            minutes_after_declaration=_minutes(call.opened_at, crisis.declared_at),
            slots_opened=call.slots_opened,
        )
        for call, gp, practice in rows
    ]


def _timeline(crisis: Crisis, calls: list[ReportCall], zone: ZoneInfo) -> list[TimelineEntry]:
    entries = [
        TimelineEntry(at=crisis.started_at.astimezone(zone), event="started"),
        TimelineEntry(at=crisis.declared_at.astimezone(zone), event="declared"),
    ]
    for c in calls:
        who = {"practitioner_id": c.practitioner_id, "practitioner": c.practitioner}
        entries.append(TimelineEntry(at=c.sent_at, event="called", **who))
        if c.opened_at is not None:
            entries.append(
                TimelineEntry(at=c.opened_at, event="capacity_opened", slots=c.slots_opened, **who)
            )
    if crisis.ended_at is not None:
        entries.append(TimelineEntry(at=crisis.ended_at.astimezone(zone), event="ended"))
    order = {"started": 0, "declared": 1, "called": 2, "capacity_opened": 3, "ended": 4}
    return sorted(entries, key=lambda e: (e.at, order[e.event]))


async def crisis_report(
    session: AsyncSession, crisis: Crisis, territory: Territory, now: datetime
) -> CrisisReport:
    zone = ZoneInfo(territory.timezone)
    slot_span = (
        await session.execute(
            select(
                func.min(Slot.start),
                func.max(Slot.start),
                func.min(Slot.created_at),
                func.max(Slot.created_at),
            ).where(Slot.crisis_id == crisis.id)
        )
    ).one()
    first, last = _day_span(crisis, zone, now, tuple(slot_span))
    lo = datetime.combine(first, time(), zone)
    hi = datetime.combine(last + timedelta(days=1), time(), zone)
    params = {"t": territory.id, "tz": territory.timezone, "lo": lo, "hi": hi, "crisis": crisis.id}
    slots = await by_day(session, SLOTS_SQL, params)
    for day, cancelled in (await by_day(session, CANCELLED_SQL, params)).items():
        slots.setdefault(day, {}).update(cancelled)
    created = {
        row.day: int(row.n)
        for row in await session.execute(text(CREATED_SQL), {"tz": territory.timezone,
                                                             "crisis": crisis.id})
    }  # fmt: skip
    unmet_lo = min(crisis.started_at, crisis.declared_at)
    unmet_hi = crisis.ended_at or now
    unmet_day: Counter[date] = Counter()
    reasons: Counter[str] = Counter()
    communes: Counter[str] = Counter()
    empty = 0
    for row in await session.execute(
        text(UNMET_SQL),
        {"t": territory.id, "tz": territory.timezone, "lo": unmet_lo, "hi": unmet_hi,
         "communes": list(crisis.communes or [])},
    ):  # fmt: skip
        if row.kind == "empty_search":
            empty += int(row.n)
        else:
            unmet_day[row.day] += int(row.n)
            reasons[row.reason] += int(row.n)
            communes[row.commune] += int(row.n)
    plan = await session.get(CrisisPlan, crisis.plan_id) if crisis.plan_id else None
    pledge = pledge_by_weekday(plan.document if plan else None)

    days: list[ReportDay] = []
    day = first
    while day <= last:
        s = slots.get(day, {})
        days.append(
            ReportDay(
                day=day,
                slots_opened=s.get("opened", 0),
                slots_created=created.get(day, 0),
                pledge=pledge[day.isoweekday()],
                booked=s.get("booked", 0),
                honoured=s.get("honoured", 0),
                no_show=s.get("no_show", 0),
                cancelled=s.get("cancelled", 0),
                unmet=unmet_day[day],
            )
        )
        day += timedelta(days=1)
    calls = await _calls(session, crisis, zone)
    within = [c.minutes_after_declaration for c in calls if c.minutes_after_declaration is not None]

    def total(name: str) -> int:
        return sum(getattr(d, name) for d in days)

    totals = ReportTotals(
        slots_opened=total("slots_opened"),
        slots_created=total("slots_created"),
        pledge=total("pledge"),
        booked=total("booked"),
        honoured=total("honoured"),
        no_show=total("no_show"),
        cancelled=total("cancelled"),
        unmet=sum(reasons.values()),
        empty_searches=empty,
        volunteers_called=len(calls),
        pledges_honoured=len(within),
        opened_within_2h=sum(1 for m in within if m < 120),
        opened_within_24h=sum(1 for m in within if m < 24 * 60),
    )
    return CrisisReport(
        crisis=summary(crisis),
        timezone=territory.timezone,
        first_day=first,
        last_day=last,
        days=days,
        totals=totals,
        unmet_by_reason={r: reasons[r] for r in REASONS},
        unmet_by_commune=dict(sorted(communes.items())),
        calls=calls,
        timeline=_timeline(crisis, calls, zone),
    )


async def territory_crises(session: AsyncSession, territory_id: uuid.UUID) -> list[Crisis]:
    """The territory's crises, the latest declared first."""
    return list(
        (
            await session.scalars(
                select(Crisis)
                .where(Crisis.territory_id == territory_id)
                .order_by(Crisis.declared_at.desc(), Crisis.id)
            )
        ).all()
    )
