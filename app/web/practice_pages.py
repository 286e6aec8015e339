"""The practice's pages (/cabinet): the week's agenda of its GPs, the practice's home and each
GP's page. Coordinators open the same pages for any practice of their territory. Everything
goes through the scheduling services, so the rules and the authorisation are the API's own
(another practice's GP is a 404, as in the API). The rules' pages are practice_rule_pages.py,
the one-off slots' and absences' practice_slot_pages.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.activity.audit import log_shown
from app.api.deps import SessionDep
from app.bounds import BoundedDate
from app.clock import now_utc
from app.directory.models import Practice, Practitioner
from app.directory.practice_service import get_practice
from app.directory.practitioner_service import get_practitioner, list_practitioners
from app.sas_bridge.feeds import last_import
from app.scheduling import agenda, booking_views, publication, unavailabilities
from app.scheduling.booking_schemas import BookingOut
from app.security import PRACTICE
from app.web import feed_report
from app.web.auth import UserDep, WebUser, require_role, show
from app.web.forms import local_day_start
from app.web.french import collation_key
from app.web.practice_publishing import PUBLISHERS, describe_rule, publishing_zone
from app.web.render import redirect

router = APIRouter(prefix="/cabinet", include_in_schema=False)


@dataclass
class Day:
    day: date
    slots: list[dict[str, Any]]


def _monday(value: date) -> date:
    return value - timedelta(days=value.weekday())


async def _week(
    session: AsyncSession,
    user: WebUser,
    practitioners: list[Practitioner],
    monday: date,
    tz: ZoneInfo,
) -> dict[uuid.UUID, list[Day]]:
    """Each GP's slots of the week, day by day, with the booking on each booked slot."""
    start, end = local_day_start(monday, tz), local_day_start(monday + timedelta(days=7), tz)
    views, _ = await booking_views.list_bookings(
        session, user.caller, status=None, start=start, end=end, cursor=None, limit=5000
    )
    shown = [booking_views.render(v) for v in views]
    occupying = {b.slot.id: b for b in shown if b.slot and b.status not in ("cancelled", "expired")}
    # A surnuméraire is in the agenda under its booking's id.
    occupying.update(
        (b.id, b) for b in shown if b.overbooked and b.status not in ("cancelled", "expired")
    )
    await log_shown(session, user.caller, "booking", list(occupying.values()), "list")
    weeks: dict[uuid.UUID, list[Day]] = {}
    for practitioner in practitioners:
        slots, _ = await agenda.list_practitioner_slots(
            session, user.caller, practitioner.id, start, end
        )
        days = [Day(monday + timedelta(days=i), []) for i in range(7)]
        for slot in slots:
            local_start = slot.start.astimezone(tz)
            booking: BookingOut | None = occupying.get(slot.id)
            days[(local_start.date() - monday).days].slots.append(
                {"slot": slot, "start": local_start, "end": slot.end.astimezone(tz),
                 "booking": booking,
                 "status": booking.status if booking and slot.status == "booked" else slot.status}
            )  # fmt: skip
        weeks[practitioner.id] = days
    return weeks


def _week_start(semaine: date | None, tz: ZoneInfo) -> date:
    return _monday(semaine or now_utc().astimezone(tz).date())


@router.get("")
async def practice_home(
    request: Request,
    session: SessionDep,
    user: UserDep,
    semaine: BoundedDate | None = None,
    cabinet: uuid.UUID | None = None,
) -> Response:
    """The week's agenda of every GP of the practice (a coordinator names the practice)."""
    require_role(user, *PUBLISHERS)
    practice_id = user.caller.practice_id if user.role == PRACTICE else cabinet
    if practice_id is None:
        return redirect("/coordination/annuaire")
    practice: Practice = await get_practice(session, user.caller, practice_id)
    practitioners, _ = await list_practitioners(
        session, user.caller, territory_id=None, practice_id=practice.id, rpps=None,
        cursor=None, limit=100,
    )  # fmt: skip
    practitioners = sorted(
        practitioners, key=lambda p: collation_key(f"{p.family_name} {p.given_name}")
    )
    if not practitioners:
        return show(request, user, "practice.html", practice=practice, practitioners=[],
                    weeks={}, monday=None, tz=None, single=False)  # fmt: skip
    tz = await publishing_zone(session, practitioners[0].id, user)
    monday = _week_start(semaine, tz)
    weeks = await _week(session, user, practitioners, monday, tz)
    return show(
        request, user, "practice.html", practice=practice, practitioners=practitioners,
        weeks=weeks, monday=monday, tz=tz, single=False,
        base=f"/cabinet?{'cabinet=' + str(practice.id) + '&' if user.role != PRACTICE else ''}",
    )  # fmt: skip


@router.get("/medecins/{practitioner_id}")
async def practitioner_page(
    request: Request,
    session: SessionDep,
    user: UserDep,
    practitioner_id: uuid.UUID,
    semaine: BoundedDate | None = None,
) -> Response:
    """One GP: the week, the availability rules, the absences to come, and the agenda feed's
    last import (the events it skipped and its conflicts)."""
    require_role(user, *PUBLISHERS)
    practitioner = await get_practitioner(session, user.caller, practitioner_id)
    rules = await publication.list_rules(session, user.caller, practitioner.id)
    tz = await publishing_zone(session, practitioner.id, user)
    monday = _week_start(semaine, tz)
    weeks = await _week(session, user, [practitioner], monday, tz)
    absences, _ = await unavailabilities.list_unavailabilities(
        session, user.caller, practitioner.id, after=now_utc()
    )
    feed, last = await last_import(session, user.caller, practitioner.id)
    return show(
        request, user, "practitioner.html", practitioner=practitioner, practitioners=[practitioner],
        rules=[(r, describe_rule(r)) for r in rules], weeks=weeks, monday=monday, tz=tz,
        absences=absences, single=True, base=f"/cabinet/medecins/{practitioner.id}?",
        feed=feed, last_import=last, report=feed_report,
    )  # fmt: skip
