"""Declaring and ending a crisis. The coordinator declares for its territory (an admin, the
ARS, for the territory it names): the crisis, the calls of the current plan's volunteers
(app.crisis.calls), `crisis.declared`. At most one crisis runs a territory (409). Ending it
closes the surge (app.crisis.capacity), stops the calls' e-mails, restores the raised caps,
records `crisis.ended` and tells the SAS and the called practices. A second end is a 409."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.service import record as record_event
from app.config import Settings
from app.crisis import calls, capacity, plans, schemas
from app.crisis.models import Crisis, CrisisCall, CrisisPlan
from app.crisis.plan_schemas import PlanDocument
from app.directory import communes
from app.directory.models import Territory
from app.errors import Conflict, NotFound, ValidationFailed
from app.outbox.messages import enqueue_webhooks
from app.security import ADMIN, COORDINATOR, DASHBOARD, PRACTICE, Caller
from app.validators import local

NO_PLAN = "No crisis plan for this territory: nobody was called."


def declaring_territory(caller: Caller, territory_id: uuid.UUID | None) -> uuid.UUID:
    """The coordinator's own territory; the one an admin names (required then)."""
    caller.require(COORDINATOR, ADMIN)
    if caller.role == ADMIN:
        if territory_id is None:
            raise ValidationFailed.field(["body", "territory_id"], "an admin names the territory")
        return territory_id
    if caller.territory_id is None:
        raise ValidationFailed.field(["territory_id"], "this key has no territory")
    if territory_id is not None and territory_id != caller.territory_id:
        raise NotFound("Territory not found")
    return caller.territory_id


async def current_plan(
    session: AsyncSession, territory_id: uuid.UUID
) -> tuple[CrisisPlan, PlanDocument] | None:
    """The territory's plan in force (app.crisis.plans) with its document read."""
    plan = await plans.current_of(session, territory_id)
    return (plan, PlanDocument.model_validate(plan.document)) if plan else None


async def resolve_communes(
    session: AsyncSession, territory_id: uuid.UUID, values: Collection[str], loc: str = "communes"
) -> list[str]:
    """INSEE codes for what was typed (app.directory.communes.resolve_in_territory)."""
    return await communes.resolve_in_territory(session, territory_id, values, loc)


async def running_crisis(session: AsyncSession, territory_id: uuid.UUID) -> Crisis | None:
    return await session.scalar(
        select(Crisis).where(Crisis.territory_id == territory_id, Crisis.ended_at.is_(None))
    )


async def running_in(session: AsyncSession, territory_ids: Collection[uuid.UUID]) -> list[Crisis]:
    """The crises running in these territories (the SAS's banner)."""
    if not territory_ids:
        return []
    return list(
        await session.scalars(
            select(Crisis)
            .where(Crisis.territory_id.in_(list(territory_ids)), Crisis.ended_at.is_(None))
            .order_by(Crisis.declared_at)
        )
    )


async def get_crisis(session: AsyncSession, caller: Caller, crisis_id: uuid.UUID) -> Crisis:
    crisis = await session.get(Crisis, crisis_id)
    if crisis is None:
        raise NotFound("Crisis not found")
    caller.check_territory(crisis.territory_id, "Crisis")
    return crisis


def shown_calls(caller: Caller, call: CrisisCall) -> bool:
    """The calls a caller sees: all for the CPTS (coordinator, dashboard) and the ARS (admin),
    a practice its own GPs' (their ids open the capacity), the SAS none (the crisis only)."""
    if caller.role in (COORDINATOR, ADMIN, DASHBOARD):
        return True
    return caller.role == PRACTICE and call.practice_id == caller.practice_id


async def crisis_out(
    session: AsyncSession,
    crisis: Crisis,
    note: str | None = None,
    caller: Caller | None = None,
) -> schemas.CrisisOut:
    """The crisis, the number of volunteers called and, with `caller`, the calls it sees;
    its times in the territory's offset."""
    territory = await session.get(Territory, crisis.territory_id)
    assert territory is not None  # a crisis's territory cascades its deletion
    tz = territory.timezone

    def at(value: datetime | None) -> datetime | None:
        return local(value, tz) if value is not None else None

    found = list(
        await session.scalars(
            select(CrisisCall)
            .where(CrisisCall.crisis_id == crisis.id)
            .order_by(CrisisCall.sent_at, CrisisCall.id)
        )
    )
    shown = [c for c in found if caller is None or shown_calls(caller, c)]
    return schemas.CrisisOut(
        id=crisis.id,
        territory_id=crisis.territory_id,
        plan_id=crisis.plan_id,
        kind=crisis.kind,
        title=crisis.title,
        started_at=local(crisis.started_at, tz),
        expected_end_at=local(crisis.expected_end_at, tz),
        communes=list(crisis.communes),
        declared_at=local(crisis.declared_at, tz),
        ended_at=at(crisis.ended_at),
        running=crisis.ended_at is None,
        volunteers_called=len(found),
        note=note,
        calls=[
            schemas.CrisisCallOut.model_validate(c).model_copy(
                update={"sent_at": local(c.sent_at, tz), "opened_at": at(c.opened_at)}
            )
            for c in shown
        ],
    )


async def declare(
    session: AsyncSession,
    caller: Caller,
    data: schemas.CrisisIn,
    now: datetime,
    settings: Settings,
) -> schemas.CrisisOut:
    territory_id = declaring_territory(caller, data.territory_id)
    if await session.get(Territory, territory_id) is None:
        raise NotFound("Territory not found")
    if data.expected_end_at <= now:
        raise ValidationFailed.field(["body", "expected_end_at"], "the expected end is past")
    codes = await resolve_communes(session, territory_id, data.communes)
    running = await running_crisis(session, territory_id)
    if running is not None:
        raise Conflict("A crisis already runs in this territory", crisis_id=str(running.id))
    found = await current_plan(session, territory_id)
    crisis = Crisis(
        id=uuid.uuid4(),
        territory_id=territory_id,
        plan_id=found[0].id if found else None,
        kind=data.kind,
        title=data.title,
        started_at=data.started_at,
        expected_end_at=data.expected_end_at,
        communes=codes,
        declared_at=now,
        declared_by_key_id=caller.key_id,
    )
    try:
        async with session.begin_nested():
            session.add(crisis)
            await session.flush()
    except IntegrityError as exc:  # declared at the same moment by someone else
        raise Conflict("A crisis already runs in this territory") from exc
    await record_event(
        session,
        "crisis.declared",
        territory_id=territory_id,
        subject_id=crisis.id,
        actor_key_id=caller.key_id,
        kind=crisis.kind,
        communes=codes,
    )
    called = await calls.call_volunteers(
        session, crisis, found[1] if found else None, now, settings, caller.key_id
    )
    await calls.tell_sas(
        session,
        "crisis.declared",
        {"crisis": calls.crisis_payload(crisis), "volunteers_called": called},
    )
    return await crisis_out(session, crisis, None if found else NO_PLAN, caller)


async def call_again(
    session: AsyncSession, caller: Caller, crisis_id: uuid.UUID, now: datetime, settings: Settings
) -> schemas.CrisisOut:
    """Call the volunteers of the territory's current plan not called yet (a plan updated
    during the crisis); those already called are not called twice. The crisis now reads its
    pledges from that version."""
    caller.require(COORDINATOR, ADMIN)
    crisis = await get_crisis(session, caller, crisis_id)
    await session.refresh(crisis, with_for_update=True)
    if crisis.ended_at is not None:
        raise Conflict("This crisis has ended", ended_at=crisis.ended_at.isoformat())
    found = await current_plan(session, crisis.territory_id)
    if found is None:
        return await crisis_out(session, crisis, NO_PLAN, caller)
    crisis.plan_id = found[0].id
    await calls.call_volunteers(session, crisis, found[1], now, settings, caller.key_id)
    return await crisis_out(session, crisis, caller=caller)


async def end(
    session: AsyncSession, caller: Caller, crisis_id: uuid.UUID, now: datetime
) -> schemas.CrisisEndOut:
    caller.require(COORDINATOR, ADMIN)
    crisis = await get_crisis(session, caller, crisis_id)
    await session.refresh(crisis, with_for_update=True)
    if crisis.ended_at is not None:
        raise Conflict("This crisis has already ended", ended_at=crisis.ended_at.isoformat())
    closed, kept = await capacity.close_capacity(session, crisis, now)
    await calls.stop(session, crisis)
    crisis.ended_at = max(now, crisis.declared_at)
    crisis.ended_by_key_id = caller.key_id
    await session.flush()
    await record_event(
        session,
        "crisis.ended",
        territory_id=crisis.territory_id,
        subject_id=crisis.id,
        actor_key_id=caller.key_id,
        slots_closed=closed,
    )
    payload = {"crisis": calls.crisis_payload(crisis), "slots_closed": closed, "slots_kept": kept}
    await calls.tell_sas(session, "crisis.ended", payload)
    practices = await session.scalars(
        select(func.distinct(CrisisCall.practice_id)).where(CrisisCall.crisis_id == crisis.id)
    )
    for practice_id in practices:
        await enqueue_webhooks(
            session,
            "crisis.ended",
            payload,
            practice_id=practice_id,
            regulator_id=None,
            territory_id=crisis.territory_id,
        )
    out = await crisis_out(session, crisis, caller=caller)
    return schemas.CrisisEndOut(**out.model_dump(), slots_closed=closed, slots_kept=kept)
