"""The territory's crisis plan, by version: write a new version (each one immutable), list
them, read one or the current one (the highest version), and its review status (a year after
the last review, a reminder). Services flush, never commit; the clock is a parameter."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.models import ActivityEvent
from app.activity.service import record as record_event
from app.crisis.models import CrisisPlan
from app.crisis.plan_schemas import PlanDocument
from app.directory.access import flush_or_conflict
from app.directory.models import CommuneRecord, Practice, Practitioner, Territory
from app.errors import NotFound, ValidationFailed
from app.pagination import cursor_int, decode_cursor, encode_cursor
from app.security import ADMIN, COORDINATOR, DASHBOARD, Caller
from app.validators import local

WRITERS = (COORDINATOR, ADMIN)
READERS = (COORDINATOR, ADMIN, DASHBOARD)
NOT_A_PRACTITIONER = "not a practitioner of this territory"
UNKNOWN_COMMUNE = "not in the referential of communes"
MAX_VERSION = 2_000_000_000


# The review -------------------------------------------------------------------------------


def review_due_on(reviewed_on: date) -> date:
    """A year after the last review. A review on 29 February falls due on 28 February of
    the next year (the last day of its month), not on 1 March: the reminder never comes late."""
    try:
        return reviewed_on.replace(year=reviewed_on.year + 1)
    except ValueError:  # 29 February, and the next year is not a leap year
        return date(reviewed_on.year + 1, 2, 28)


@dataclass(frozen=True)
class Review:
    reviewed_on: date
    due_on: date
    due: bool


def review(reviewed_on: date, today: date) -> Review:
    """Due on and after the day a year has passed (`today`: the territory's local date)."""
    due_on = review_due_on(reviewed_on)
    return Review(reviewed_on, due_on, today >= due_on)


def local_today(now: datetime, timezone: str) -> date:
    return local(now, timezone).date()


# Whose plan -------------------------------------------------------------------------------


async def territory_of(
    session: AsyncSession,
    caller: Caller,
    territory_id: uuid.UUID | None,
    roles: tuple[str, ...],
    where: str,
) -> Territory:
    """The territory whose plan the caller writes or reads: a coordinator's or dashboard's
    own (another one is a 404); an admin names it (`where`: the field that names it)."""
    caller.require(*roles)
    if territory_id is None:
        if caller.territory_id is None:
            loc = ["territory_id"] if where == "body" else [where, "territory_id"]
            raise ValidationFailed.field(loc, "required for this key")
        territory_id = caller.territory_id
    caller.check_territory(territory_id, "Territory")
    territory = await session.get(Territory, territory_id)
    if territory is None:
        raise NotFound("Territory not found")
    return territory


# Writing ----------------------------------------------------------------------------------


async def _check_references(
    session: AsyncSession, territory_id: uuid.UUID, document: PlanDocument
) -> None:
    """Every volunteer is a practitioner of the territory, every site's commune is known:
    one 422 naming each wrong field (`volunteers[i].practitioner_id`, `sites[i].commune_insee`)."""
    ids = {v.practitioner_id for v in document.volunteers}
    codes = {s.commune_insee for s in document.sites}
    known = set(
        (
            await session.scalars(
                select(Practitioner.id).where(
                    Practitioner.id.in_(ids), Practitioner.territory_id == territory_id
                )
            )
        ).all()
    )
    communes = set(
        await session.scalars(select(CommuneRecord.insee).where(CommuneRecord.insee.in_(codes)))
    )
    errors: list[dict[str, Any]] = [
        {"loc": ["volunteers", i, "practitioner_id"], "msg": NOT_A_PRACTITIONER}
        for i, v in enumerate(document.volunteers)
        if v.practitioner_id not in known
    ] + [
        {"loc": ["sites", i, "commune_insee"], "msg": UNKNOWN_COMMUNE}
        for i, s in enumerate(document.sites)
        if s.commune_insee not in communes
    ]
    if errors:
        where = "; ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in errors)
        raise ValidationFailed(where, errors=errors)


async def write_version(
    session: AsyncSession,
    caller: Caller,
    document: PlanDocument,
    territory_id: uuid.UUID | None,
    now: datetime,
) -> CrisisPlan:
    """A new version of the territory's plan: the previous version + 1 (the first is 1)."""
    territory = await territory_of(session, caller, territory_id, WRITERS, "body")
    await _check_references(session, territory.id, document)
    last = await session.scalar(
        select(func.max(CrisisPlan.version)).where(CrisisPlan.territory_id == territory.id)
    )
    plan = CrisisPlan(
        id=uuid.uuid4(),
        territory_id=territory.id,
        version=(last or 0) + 1,
        document=document.model_dump(mode="json", exclude={"territory_id"}),
        reviewed_on=document.reviewed_on,
        created_at=now,
        created_by_key_id=caller.key_id,
    )
    session.add(plan)
    await flush_or_conflict(
        session, "Another version of this plan was written at the same time; send it again"
    )
    await record_event(
        session,
        "crisis_plan.version_written",
        territory_id=territory.id,
        subject_id=plan.id,
        actor_key_id=caller.key_id,
        version=plan.version,
    )
    return plan


# Reading ----------------------------------------------------------------------------------


async def get(session: AsyncSession, caller: Caller, plan_id: uuid.UUID) -> CrisisPlan:
    caller.require(*READERS)
    plan = await session.get(CrisisPlan, plan_id)
    if plan is None or not caller.sees_territory(plan.territory_id):
        raise NotFound("Crisis plan not found")
    return plan


async def current_of(session: AsyncSession, territory_id: uuid.UUID) -> CrisisPlan | None:
    """The territory's plan in force: its highest version (None: no plan yet)."""
    return await session.scalar(
        select(CrisisPlan)
        .where(CrisisPlan.territory_id == territory_id)
        .order_by(CrisisPlan.version.desc())
        .limit(1)
    )


async def current(
    session: AsyncSession, caller: Caller, territory_id: uuid.UUID | None
) -> CrisisPlan:
    territory = await territory_of(session, caller, territory_id, READERS, "query")
    plan = await current_of(session, territory.id)
    if plan is None:
        raise NotFound("This territory has no crisis plan yet")
    return plan


async def list_versions(
    session: AsyncSession,
    caller: Caller,
    territory_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> tuple[Territory, list[CrisisPlan], str | None]:
    """The territory's versions, newest first; the cursor is the last version seen."""
    territory = await territory_of(session, caller, territory_id, READERS, "query")
    stmt = select(CrisisPlan).where(CrisisPlan.territory_id == territory.id)
    if cursor:
        stmt = stmt.where(CrisisPlan.version < cursor_int(decode_cursor(cursor, 1)[0], 1,
                                                          MAX_VERSION))  # fmt: skip
    rows = list(
        (await session.scalars(stmt.order_by(CrisisPlan.version.desc()).limit(limit + 1))).all()
    )
    if len(rows) <= limit:
        return territory, rows, None
    rows = rows[:limit]
    return territory, rows, encode_cursor([rows[-1].version])


# The territory's GPs, to choose volunteers from --------------------------------------------


@dataclass(frozen=True)
class Gp:
    id: uuid.UUID
    family_name: str
    given_name: str
    rpps: str
    practice_id: uuid.UUID
    practice_name: str
    commune_insee: str


async def practitioners(
    session: AsyncSession, territory_id: uuid.UUID, ids: set[uuid.UUID] | None = None
) -> list[Gp]:
    """The territory's practitioners with their practice, alphabetically (`ids`: only those;
    else the GPs, to choose volunteers from)."""
    stmt = (
        select(Practitioner, Practice)
        .join(Practice, Practice.id == Practitioner.practice_id)
        .where(Practitioner.territory_id == territory_id)
        .order_by(Practitioner.family_name, Practitioner.given_name, Practitioner.id)
    )
    if ids is not None:
        stmt = stmt.where(Practitioner.id.in_(ids))
    else:
        stmt = stmt.where(Practitioner.profession == "general_practitioner")
    rows = (await session.execute(stmt)).all()
    return [
        Gp(p.id, p.family_name, p.given_name, p.rpps, c.id, c.name, c.commune_insee)
        for p, c in rows
    ]


# The reminder's record --------------------------------------------------------------------

REVIEW_DUE = "crisis_plan.review_due"


async def record_due_reviews(session: AsyncSession, now: datetime) -> int:
    """Each territory's current plan whose review has fallen due (on its local date) gets the
    event `crisis_plan.review_due` once per version (subject = the plan; data: version and
    due date), and its e-mail to the territory's coordinators queued once per version
    (`review_mail_status` pending, sent after commit by app.crisis.review_mail; `none`
    without an address). Safe to run twice; the number of events recorded."""
    latest = (
        select(CrisisPlan.territory_id, func.max(CrisisPlan.version).label("version"))
        .group_by(CrisisPlan.territory_id)
        .subquery()
    )
    current = (
        await session.execute(
            select(CrisisPlan, Territory.timezone, Territory.coordinator_emails)
            .join(
                latest,
                (latest.c.territory_id == CrisisPlan.territory_id)
                & (latest.c.version == CrisisPlan.version),
            )
            .join(Territory, Territory.id == CrisisPlan.territory_id)
        )
    ).all()
    due = [
        (plan, status, emails)
        for plan, tz, emails in current
        if (status := review(plan.reviewed_on, local_today(now, tz))).due
    ]
    if not due:
        return 0
    recorded = set(
        (
            await session.scalars(
                select(ActivityEvent.subject_id).where(
                    ActivityEvent.type == REVIEW_DUE,
                    ActivityEvent.subject_id.in_([plan.id for plan, _, _ in due]),
                )
            )
        ).all()
    )
    count = 0
    for plan, status, emails in due:
        if plan.review_mail_status is None:
            plan.review_mail_status = "pending" if emails else "none"
        if plan.id in recorded:
            continue
        await record_event(
            session,
            REVIEW_DUE,
            territory_id=plan.territory_id,
            subject_id=plan.id,
            version=plan.version,
            due_on=status.due_on.isoformat(),
        )
        count += 1
    await session.flush()
    return count
