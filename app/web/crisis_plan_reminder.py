"""The reminder on the coordinator's pages: the territory has no crisis plan yet, or a year
has passed since its last review (app.crisis.plans.review)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.crisis import plans
from app.directory.models import Territory
from app.security import COORDINATOR, Caller


@dataclass(frozen=True)
class Reminder:
    """`missing`: no plan yet; else the plan's version, last review and the day it fell due."""

    missing: bool
    version: int | None = None
    reviewed_on: date | None = None
    due_on: date | None = None


async def plan_reminder(session: AsyncSession, caller: Caller, now: datetime) -> Reminder | None:
    """The reminder for a coordinator's pages, None when the plan is up to date (or for the
    other roles)."""
    if caller.role != COORDINATOR or caller.territory_id is None:
        return None
    territory = await session.get(Territory, caller.territory_id)
    if territory is None:
        return None
    plan = await plans.current_of(session, territory.id)
    if plan is None:
        return Reminder(missing=True)
    status = plans.review(plan.reviewed_on, plans.local_today(now, territory.timezone))
    if not status.due:
        return None
    return Reminder(False, plan.version, status.reviewed_on, status.due_on)
