"""Surnuméraires: a consultation beyond published slots, for a GP who accepts them, within
its daily cap, hours, modalities and the territory's SNP window."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import now_utc
from app.directory.models import Practice, Practitioner, Territory
from app.errors import Conflict, ValidationFailed
from app.patient_data import patient_columns
from app.scheduling import booking_schemas as schemas
from app.scheduling.booking_creation import resolve_operator
from app.scheduling.booking_events import lead_minutes, record_change
from app.scheduling.booking_models import Booking
from app.scheduling.booking_views import BookingView
from app.scheduling.models import AvailabilityRule
from app.scheduling.queries import first_unavailability_over
from app.scheduling.rules import local_instant
from app.security import REGULATOR, Caller

# Without rules nor a list of its own, a GP who accepts surnuméraires sees them at the practice.
DEFAULT_OVERBOOKING_MODALITIES = ("cabinet",)


async def overbooking_modalities(session: AsyncSession, practitioner: Practitioner) -> list[str]:
    """The modalities the practitioner accepts as surnuméraire: its own list, else those of
    its availability rules, else the practice (cabinet)."""
    if practitioner.overbooking_modalities is not None:
        return sorted(practitioner.overbooking_modalities)
    ruled = await session.scalars(
        select(AvailabilityRule.modality)
        .where(AvailabilityRule.practitioner_id == practitioner.id)
        .distinct()
    )
    return sorted(ruled.all()) or list(DEFAULT_OVERBOOKING_MODALITIES)


def within_hours(
    start: datetime, end: datetime, tz: ZoneInfo, hours_start: time, hours_end: time
) -> bool:
    """Whether [start, end) lies in the local hours of one day (an end at or before the start
    is the next day), DST-correct: the hours are wall-clock times of that day. Equal hours
    (00:00-00:00) are round the clock: every instant is inside, midnight included."""
    if hours_end == hours_start:
        return True
    overnight = hours_end < hours_start
    first = start.astimezone(tz).date()
    for day in (first - timedelta(days=1), first):
        opens = local_instant(day, hours_start, tz)
        closes = local_instant(day + timedelta(days=1) if overnight else day, hours_end, tz)
        if opens <= start and end <= closes:
            return True
    return False


async def refuse_overbooking(
    session: AsyncSession,
    practitioner: Practitioner,
    tz: ZoneInfo,
    window_hours: int,
    data: schemas.OverbookIn,
    *,
    now: datetime,
) -> None:
    """The guards of a surnuméraire, each refusal a problem with a `refusal` code (and what
    a page needs to say it): beyond the territory's SNP window (422), for a modality the GP
    does not accept, outside its surnuméraire hours, inside one of its absences (409)."""
    assert data.end is not None
    if data.start > now + timedelta(hours=window_hours):
        msg = f"beyond the territory's SNP window of {window_hours} hours"
        raise ValidationFailed(
            f"body.start: {msg}",
            errors=[{"loc": ["body", "start"], "msg": msg}],
            refusal="snp_window",
            window_hours=window_hours,
        )
    accepted = await overbooking_modalities(session, practitioner)
    if data.modality not in accepted:
        raise Conflict(
            f"This practitioner does not accept a {data.modality} surnuméraire "
            f"(accepted: {', '.join(accepted)})",
            refusal="modality",
            modality=data.modality,
            accepted=accepted,
        )
    opens, closes = practitioner.overbooking_start_time, practitioner.overbooking_end_time
    if not within_hours(data.start, data.end, tz, opens, closes):
        raise Conflict(
            f"Outside the practitioner's surnuméraire hours ({opens:%H:%M}-{closes:%H:%M} local)",
            refusal="hours",
            hours_start=f"{opens:%H:%M}",
            hours_end=f"{closes:%H:%M}",
        )
    absence = await first_unavailability_over(session, practitioner.id, data.start, data.end)
    if absence is not None:
        raise Conflict(
            "The practitioner is declared unavailable over this period",
            refusal="unavailable",
            unavailable_from=absence.start.astimezone(tz).isoformat(),
            unavailable_until=absence.end.astimezone(tz).isoformat(),
        )


async def overbook(session: AsyncSession, caller: Caller, data: schemas.OverbookIn) -> BookingView:
    """A consultation beyond published slots, within the practitioner's daily cap (local
    day). The practitioner row is locked so concurrent requests count one after the other."""
    caller.require(REGULATOR)
    operator_id = await resolve_operator(session, data.operator)
    now = now_utc()
    row = (
        await session.execute(
            select(Practitioner, Practice, Territory.timezone, Territory.snp_window_hours)
            .join(Practice, Practice.id == Practitioner.practice_id)
            .join(Territory, Territory.id == Practitioner.territory_id)
            .where(
                Practitioner.id == data.practitioner_id,
                Practitioner.territory_id.in_(caller.territory_ids),
            )
            .with_for_update(of=Practitioner)
        )
    ).one_or_none()
    if row is None:
        raise ValidationFailed.field(["body", "practitioner_id"], "unknown practitioner")
    practitioner, practice, tz, window_hours = row
    assert data.end is not None
    if data.start <= now:
        raise ValidationFailed.field(["body", "start"], "must be in the future")
    if not practitioner.accepts_overbooking:
        raise Conflict(
            "This practitioner does not accept surnuméraire patients", refusal="not_accepted"
        )
    await refuse_overbooking(session, practitioner, ZoneInfo(tz), window_hours, data, now=now)
    local_day = data.start.astimezone(ZoneInfo(tz)).date()
    day_start = datetime.combine(local_day, time(), ZoneInfo(tz))
    day_end = datetime.combine(local_day + timedelta(days=1), time(), ZoneInfo(tz))
    used = await session.scalar(
        select(func.count())
        .select_from(Booking)
        .where(
            Booking.practitioner_id == practitioner.id,
            Booking.overbooked.is_(True),
            Booking.status != "cancelled",
            Booking.start >= day_start,
            Booking.start < day_end,
        )
    )
    if (used or 0) >= practitioner.overbooking_daily_cap:
        raise Conflict(
            f"The daily surnuméraire cap ({practitioner.overbooking_daily_cap}) is reached "
            f"for {local_day.isoformat()}",
            refusal="daily_cap",
            cap=practitioner.overbooking_daily_cap,
            day=local_day.isoformat(),
        )
    booking = Booking(
        slot_id=None,
        practitioner_id=practitioner.id,
        practice_id=practice.id,
        territory_id=practitioner.territory_id,
        regulator_id=caller.regulator_id,
        created_by_key_id=caller.key_id,
        status="booked",
        start=data.start,
        end=data.end,
        modality=data.modality,
        overbooked=True,
        operator_account_id=operator_id,
        created_at=now,
        booked_at=now,
        sas_case_ref=data.sas_case_ref,
        reason=data.reason,
        visit_address=data.visit_address,
        **patient_columns(data.patient),
    )
    session.add(booking)
    await session.flush()
    await record_change(
        session, caller, "booking.overbooked", booking, lead_minutes=lead_minutes(data.start, now)
    )
    return BookingView(booking, practitioner, practice, tz, True)
