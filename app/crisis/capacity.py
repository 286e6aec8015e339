"""Crisis capacity: what a called GP opens through its link (surge rules, SAS-visible, valid
from today to the crisis' expected end, materialised at once with the crisis' id on every
slot, an overlap with an existing slot skipped), and what ending the crisis closes (the
rules stop at the end's local date; their future free slots are withdrawn, booked and held
ones stay)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.service import record as record_event
from app.crisis.models import Crisis, CrisisCall, CrisisPlan
from app.crisis.plan_schemas import PlanDocument, Pledge
from app.directory.models import Territory
from app.errors import Conflict, NotFound, ValidationFailed
from app.scheduling.booking_models import Booking
from app.scheduling.booking_outcomes import expire_holds
from app.scheduling.materialisation import materialize_rules_now
from app.scheduling.models import AvailabilityRule, Slot
from app.scheduling.publication import rule_spec, validate_spec
from app.scheduling.slot_writes import count_slots, withdraw_slots

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True)
class Opened:
    rules: int
    slots_opened: int
    slots_skipped: int


async def territory_zone(session: AsyncSession, territory_id: uuid.UUID) -> ZoneInfo:
    tz = await session.scalar(select(Territory.timezone).where(Territory.id == territory_id))
    if tz is None:
        raise NotFound("Territory not found")
    return ZoneInfo(tz)


async def pledged(
    session: AsyncSession, crisis: Crisis, practitioner_id: uuid.UUID
) -> list[Pledge]:
    """The GP's pledges in the plan version the crisis was declared under."""
    if crisis.plan_id is None:
        return []
    plan = await session.get(CrisisPlan, crisis.plan_id)
    if plan is None:
        return []
    document = PlanDocument.model_validate(plan.document)
    volunteer = next((v for v in document.volunteers if v.practitioner_id == practitioner_id), None)
    return list(volunteer.pledges) if volunteer else []


async def open_capacity(
    session: AsyncSession,
    call: CrisisCall,
    pledges: list[Pledge] | None,
    now: datetime,
    actor_key_id: uuid.UUID | None = None,
) -> Opened:
    """The call's surge rules and their slots: once a call (409 after), while the crisis
    runs (409 once ended). `pledges` None: those of the plan."""
    await session.refresh(call, with_for_update=True)  # a double click opens once
    crisis = await session.get(Crisis, call.crisis_id, with_for_update=True)
    assert crisis is not None
    if crisis.ended_at is not None:
        raise Conflict("This crisis has ended", ended_at=crisis.ended_at.isoformat())
    if call.opened_at is not None:
        raise Conflict(
            "This call's capacity is already open",
            opened_at=call.opened_at.isoformat(),
            slots_opened=call.slots_opened,
        )
    if pledges is None:
        pledges = await pledged(session, crisis, call.practitioner_id)
    if not pledges:
        raise Conflict("Nothing to open: the plan holds no pledge for this GP; give `pledges`")
    tz = await territory_zone(session, crisis.territory_id)
    today = now.astimezone(tz).date()
    until = max(today, crisis.expected_end_at.astimezone(tz).date())
    rules = [
        AvailabilityRule(
            id=uuid.uuid4(),
            practitioner_id=call.practitioner_id,
            rrule="FREQ=WEEKLY;BYDAY=" + ",".join(WEEKDAYS[d - 1] for d in sorted(p.weekdays)),
            start_time=p.start_time,
            end_time=p.end_time,
            slot_minutes=p.slot_minutes,
            modality=p.modality,
            visibility="sas",
            valid_from=today,
            valid_until=until,
            crisis_id=crisis.id,
        )
        for p in pledges
    ]
    for i, rule in enumerate(rules):
        try:
            validate_spec(rule_spec(rule))
        except ValidationFailed as exc:  # named on its pledge: ["body", "pledges", i, field]
            error = (exc.errors or [{"loc": ["body"], "msg": exc.detail}])[0]
            raise ValidationFailed.field(
                ["body", "pledges", i, *error["loc"][1:]], error["msg"]
            ) from exc
    session.add_all(rules)
    await session.flush()
    wanted, created = await materialize_rules_now(session, [r.id for r in rules], now=now)
    call.opened_at = now
    call.slots_opened = created
    await record_event(
        session,
        "crisis.capacity_opened",
        territory_id=crisis.territory_id,
        practitioner_id=call.practitioner_id,
        subject_id=crisis.id,
        actor_key_id=actor_key_id,
        slots=created,
        rules=len(rules),
        call_id=str(call.id),
    )
    await session.flush()
    return Opened(len(rules), created, wanted - created)


async def check_crisis_slot(
    session: AsyncSession, crisis_id: uuid.UUID, territory_id: uuid.UUID, visibility: str
) -> None:
    """A one-off slot may be crisis capacity: of the crisis running in its GP's territory,
    visible to the SAS. A 422 on `crisis_id` or `visibility` otherwise."""
    crisis = await session.get(Crisis, crisis_id)
    if crisis is None or crisis.territory_id != territory_id or crisis.ended_at is not None:
        raise ValidationFailed.field(
            ["body", "crisis_id"], "not a crisis running in the practitioner's territory"
        )
    if visibility not in ("sas", "public"):
        raise ValidationFailed.field(["body", "visibility"], "crisis capacity is for the SAS")


async def close_capacity(session: AsyncSession, crisis: Crisis, now: datetime) -> tuple[int, int]:
    """At the end: the crisis' rules valid until the end's local date; their future free
    slots (expired holds included) withdrawn, those a past booking still names made
    unavailable; booked and held ones kept. Returns (closed, kept)."""
    tz = await territory_zone(session, crisis.territory_id)
    end_day = now.astimezone(tz).date()
    # materialized_until stays: the rules were materialised past the end's day already, and
    # the nightly extension starts there, so it makes no slot for the rest of that day.
    await session.execute(
        update(AvailabilityRule)
        .where(AvailabilityRule.crisis_id == crisis.id)
        .values(valid_until=end_day)
        .execution_options(synchronize_session=False)
    )
    # Expired holds become free first (their booking `expired`), then close like free slots.
    await expire_holds(session, now=now)
    future = [Slot.crisis_id == crisis.id, Slot.start > now]
    named = exists().where(Booking.slot_id == Slot.id)
    closing = Slot.status.in_(("free", "unavailable"))
    withdrawn = await withdraw_slots(session, [*future, closing, ~named], tz, subject_id=crisis.id)
    blocked = await session.execute(
        update(Slot)
        .where(*future, Slot.status == "free", named)
        .values(status="unavailable")
        .execution_options(synchronize_session=False)
    )
    kept = await count_slots(session, [*future, Slot.status.in_(("held", "booked"))])
    return withdrawn + int(blocked.rowcount or 0), kept  # type: ignore[attr-defined]
