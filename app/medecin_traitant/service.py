"""The médecin traitant queue: census, priority, proposals and the patient's free choice.

States: waiting → proposed → attached; proposed → waiting on a decline or a lapsed deadline;
withdrawn from any open state. The waiting time always counts from the first registration,
so a decline never costs the patient their place. Services flush, never commit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, null, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.activity.service import record
from app.clock import now_utc
from app.config import get_settings
from app.directory.models import Practice, Practitioner
from app.directory.service import commune_centre
from app.errors import Conflict, NotFound, ValidationFailed
from app.medecin_traitant import history, schemas
from app.medecin_traitant.models import MtRequest
from app.pagination import cursor_instant, cursor_int, cursor_uuid, decode_cursor, encode_cursor
from app.patient_data import patient_columns, patient_out
from app.scheduling.booking_schemas import PatientIn
from app.scheduling.queries import great_circle_km
from app.security import ADMIN, COORDINATOR, PRACTICE, REGULATOR, Caller

OPEN = ("waiting", "proposed", "attached")


def same_patient(territory_id: uuid.UUID, patient: PatientIn) -> tuple[ColumnElement[bool], ...]:
    """An open request of the territory for this patient: the same INS, or the same name,
    birth date and phone (whoever registered it). One patient, one place in the queue."""
    return (
        MtRequest.territory_id == territory_id,
        MtRequest.status.in_(OPEN),
        or_(
            and_(MtRequest.patient_ins.is_not(None), MtRequest.patient_ins == patient.ins),
            and_(
                func.lower(MtRequest.patient_family_name) == patient.family_name.lower(),
                func.lower(MtRequest.patient_given_name) == patient.given_name.lower(),
                MtRequest.patient_birth_date == patient.birth_date,
                MtRequest.patient_phone == patient.phone,
            ),
        ),
    )


def aged_70() -> ColumnElement[bool]:
    seventy = func.current_date() - text("interval '70 years'")
    return func.coalesce(MtRequest.patient_birth_date <= seventy, False)


MAX_PRIORITY = 3  # the three criteria below


def priority_expr() -> ColumnElement[int]:
    """Fragility criteria met: ALD, aged 70 or more, precarity. More criteria rank higher.
    Criteria a patient declared themselves count once the coordinator has confirmed them."""
    confirmed = MtRequest.criteria_to_check.is_(False)
    return (
        case((and_(MtRequest.ald, confirmed), 1), else_=0)
        + case((and_(MtRequest.precarity, confirmed), 1), else_=0)
        + case((aged_70(), 1), else_=0)
    )


def counted(r: MtRequest) -> tuple[bool, bool]:
    """ALD and precarity as they count for priority: not while still to be checked."""
    return r.ald and not r.criteria_to_check, r.precarity and not r.criteria_to_check


def _is_70(birth_date: date | None, today: date) -> bool:
    if birth_date is None:
        return False
    years = (
        today.year
        - birth_date.year
        - ((today.month, today.day) < (birth_date.month, birth_date.day))
    )
    return years >= 70


@dataclass
class MtView:
    request: MtRequest
    proposed: Practitioner | None
    attached: Practitioner | None
    show_patient: bool


def render(view: MtView, tz_now: datetime | None = None) -> schemas.MtRequestOut:
    r, now = view.request, tz_now or now_utc()
    is_70 = _is_70(r.patient_birth_date, now.date())
    ald, precarity = counted(r)
    met = (("ald", ald), ("70+", is_70), ("precarity", precarity))
    criteria = [name for name, is_met in met if is_met]
    patient = patient_out(r, visible=view.show_patient)
    return schemas.MtRequestOut(
        id=r.id,
        territory_id=r.territory_id,
        status=r.status,
        priority=len(criteria),
        fragile=bool(criteria),
        criteria=criteria,
        ald=r.ald,
        precarity=r.precarity,
        aged_70_or_more=is_70,
        criteria_to_check=r.criteria_to_check,
        source=r.source,
        preferences=schemas.Preferences(
            communes_insee=r.preferred_communes or None,
            practitioner_gender=r.preferred_gender,
        ),
        registered_at=r.registered_at,
        waiting_days=(now - r.registered_at).days,
        proposed_practitioner=(
            schemas.PractitionerRef.model_validate(view.proposed) if view.proposed else None
        ),
        proposal_deadline=r.proposal_deadline,
        attached_practitioner=(
            schemas.PractitionerRef.model_validate(view.attached) if view.attached else None
        ),
        attached_at=r.attached_at,
        withdrawn_at=r.withdrawn_at,
        withdraw_reason=r.withdraw_reason,
        patient=patient,
    )


async def event(
    session: AsyncSession, caller: Caller | None, type_: str, r: MtRequest, **data: Any
) -> None:
    is_70 = _is_70(r.patient_birth_date, now_utc().date())
    ald, precarity = counted(r)
    await record(
        session,
        type_,
        territory_id=r.territory_id,
        practitioner_id=r.attached_practitioner_id or r.proposed_practitioner_id,
        subject_id=r.id,
        actor_key_id=caller.key_id if caller else None,
        priority=int(ald) + int(precarity) + int(is_70),
        ald=ald,
        precarity=precarity,
        aged_70=is_70,
        source=r.source,
        **data,
    )


# Registration -----------------------------------------------------------------------------


async def register(session: AsyncSession, caller: Caller, data: schemas.MtRequestIn) -> MtView:
    caller.require(COORDINATOR, REGULATOR, PRACTICE, ADMIN)
    if caller.role == PRACTICE and data.source != "practice":
        # A practice registers the patients of its own waiting list, as such.
        raise ValidationFailed.field(["body", "source"], "must be 'practice' for a practice key")
    territory_id = data.territory_id
    if territory_id is None:
        if len(caller.territory_ids) != 1:
            raise ValidationFailed.field(
                ["body", "territory_id"], "required: this key serves several territories"
            )
        territory_id = next(iter(caller.territory_ids))
    elif not caller.sees_territory(territory_id):
        raise ValidationFailed.field(["body", "territory_id"], "unknown territory")
    patient = data.patient
    duplicate = await session.scalar(
        select(MtRequest.id).where(*same_patient(territory_id, patient))
    )
    if duplicate is not None:
        raise await _duplicate(session, caller, duplicate)
    prefs = data.preferences or schemas.Preferences()
    request = MtRequest(
        territory_id=territory_id,
        status="waiting",
        source=data.source,
        ald=data.ald,
        precarity=data.precarity,
        registered_at=now_utc(),
        created_by_key_id=caller.key_id,
        preferred_communes=prefs.communes_insee or [],
        preferred_gender=prefs.practitioner_gender,
        **patient_columns(patient),
    )
    try:
        async with session.begin_nested():
            session.add(request)
            await session.flush()
    except IntegrityError as exc:  # a concurrent registration of the same patient
        existing = await session.scalar(
            select(MtRequest.id).where(
                MtRequest.territory_id == territory_id,
                MtRequest.status.in_(OPEN),
                MtRequest.patient_phone == patient.phone,
                MtRequest.patient_birth_date == patient.birth_date,
            )
        )
        raise await _duplicate(session, caller, existing) from exc
    await event(session, caller, "mt.registered", request)
    return MtView(request, None, None, caller.role != ADMIN)


async def _duplicate(session: AsyncSession, caller: Caller, existing: uuid.UUID | None) -> Conflict:
    """The 409 of a second registration; the first request's id only for a caller who may read
    it (else a SAS could learn, by INS, which request of the queue is whose)."""
    if existing is not None:
        readable = _visible(caller).with_only_columns(MtRequest.id).where(MtRequest.id == existing)
        existing = await session.scalar(readable)
    return Conflict(
        "This patient is already registered in this territory",
        existing_id=str(existing) if existing else None,
    )


# Reading ----------------------------------------------------------------------------------

_Proposed = aliased(Practitioner)
_Attached = aliased(Practitioner)


def _visible(caller: Caller) -> Select[MtRequest, Practitioner | None, Practitioner | None]:
    caller.require(COORDINATOR, REGULATOR, PRACTICE, ADMIN)
    stmt = (
        select(MtRequest, _Proposed, _Attached)
        .outerjoin(_Proposed, _Proposed.id == MtRequest.proposed_practitioner_id)
        .outerjoin(_Attached, _Attached.id == MtRequest.attached_practitioner_id)
    )
    if caller.role == COORDINATOR:
        return stmt.where(MtRequest.territory_id.in_(caller.territory_ids))
    if caller.role == REGULATOR:
        return stmt.where(
            MtRequest.created_by_key_id == caller.key_id,
            MtRequest.territory_id.in_(caller.territory_ids),
        )
    if caller.role == PRACTICE:
        return stmt.where(
            or_(
                _Proposed.practice_id == caller.practice_id,
                _Attached.practice_id == caller.practice_id,
                # The patients of its own waiting list it registered.
                and_(
                    MtRequest.created_by_key_id == caller.key_id,
                    MtRequest.territory_id.in_(caller.territory_ids),
                ),
            )
        )
    return stmt


def _view(caller: Caller, row: Any) -> MtView:
    return MtView(row[0], row[1], row[2], caller.role != ADMIN)


async def get(
    session: AsyncSession, caller: Caller, request_id: uuid.UUID, *, lock: bool = False
) -> MtView:
    stmt = _visible(caller).where(MtRequest.id == request_id)
    if lock:
        stmt = stmt.with_for_update(of=MtRequest)
    row = (await session.execute(stmt)).one_or_none()
    if row is None:
        raise NotFound("MT request not found")
    return _view(caller, row)


async def list_requests(
    session: AsyncSession,
    caller: Caller,
    *,
    status: str | None,
    priority: int | None,
    cursor: str | None,
    limit: int,
    statuses: tuple[str, ...] | None = None,
) -> tuple[list[MtView], str | None]:
    """Fragile patients first (more criteria first), then the longest waiting; `status`, or
    any of `statuses`, when given."""
    prio = priority_expr()
    stmt = _visible(caller).add_columns(prio.label("prio"))
    if status is not None:
        stmt = stmt.where(MtRequest.status == status)
    if statuses is not None:
        stmt = stmt.where(MtRequest.status.in_(statuses))
    if priority is not None:
        stmt = stmt.where(prio == priority)
    if cursor:
        p, at, ident = decode_cursor(cursor, 3)
        after = (cursor_int(p, 0, MAX_PRIORITY), cursor_instant(at), cursor_uuid(ident))
        # Descending priority: compare (-priority, registered_at, id) ascending.
        stmt = stmt.where(
            or_(
                prio < after[0],
                and_(prio == after[0], MtRequest.registered_at > after[1]),
                and_(
                    prio == after[0],
                    MtRequest.registered_at == after[1],
                    MtRequest.id > after[2],
                ),
            )
        )
    rows = (
        await session.execute(
            stmt.order_by(prio.desc(), MtRequest.registered_at, MtRequest.id).limit(limit + 1)
        )
    ).all()
    views = [_view(caller, row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([last.prio, last[0].registered_at.isoformat(), last[0].id])
    return views, next_cursor


# Capacity and candidates ------------------------------------------------------------------


def _attached_to(practitioner_id: Any) -> Select[int]:
    return select(func.count()).where(
        MtRequest.attached_practitioner_id == practitioner_id, MtRequest.status == "attached"
    )


def attached_count(practitioner_id: Any) -> ColumnElement[int]:
    return _attached_to(practitioner_id).scalar_subquery()


async def remaining_capacity(session: AsyncSession, practitioner: Practitioner) -> int:
    """Capacity less attachments: derived, never stored, so it cannot drift."""
    used = await session.scalar(_attached_to(practitioner.id)) or 0
    return practitioner.mt_capacity - used


async def candidates(
    session: AsyncSession, caller: Caller, request_id: uuid.UUID, *, limit: int = 50
) -> list[schemas.CandidateOut]:
    """GPs of the territory with room left, honouring the patient's preferences, nearest to
    the patient's commune first (commune position: its practices in the directory), those the
    patient already declined last."""
    caller.require(COORDINATOR, ADMIN)
    view = await get(session, caller, request_id)
    r = view.request
    remaining = (Practitioner.mt_capacity - attached_count(Practitioner.id)).label("remaining")
    origin = None
    if r.patient_commune_insee:
        origin = await commune_centre(session, r.patient_commune_insee)
    distance = (great_circle_km(*origin) if origin else null()).label("distance_km")
    stmt = (
        select(Practitioner, Practice, remaining, distance)
        .join(Practice, Practice.id == Practitioner.practice_id)
        .where(
            Practitioner.territory_id == r.territory_id,
            Practitioner.profession == "general_practitioner",
            remaining > 0,
        )
    )
    if r.preferred_communes:
        stmt = stmt.where(Practice.commune_insee.in_(r.preferred_communes))
    if r.preferred_gender:
        stmt = stmt.where(Practitioner.gender == r.preferred_gender)
    # A GP the patient has already declined comes after the others, never first.
    declined = history.declined_by_patient(r.id, Practitioner.id)
    stmt = stmt.order_by(
        declined, distance.asc().nulls_last(), remaining.desc(), Practitioner.id
    ).limit(limit)
    return [
        schemas.CandidateOut(
            practitioner=schemas.PractitionerRef.model_validate(p),
            practice_id=pr.id,
            practice_name=pr.name,
            commune_insee=pr.commune_insee,
            gender=p.gender,
            mt_capacity=p.mt_capacity,
            remaining_capacity=rem,
            distance_km=round(dist, 2) if dist is not None else None,
        )
        for p, pr, rem, dist in (await session.execute(stmt)).all()
    ]


async def capacities(session: AsyncSession, caller: Caller) -> list[tuple[Practitioner, int]]:
    """The territory's GPs with their attached patients (capacity less attached is left)."""
    caller.require(COORDINATOR, ADMIN)
    stmt = select(Practitioner, attached_count(Practitioner.id)).where(
        Practitioner.profession == "general_practitioner"
    )
    if not caller.instance_wide:
        stmt = stmt.where(Practitioner.territory_id.in_(caller.territory_ids))
    rows = await session.execute(
        stmt.order_by(Practitioner.family_name, Practitioner.given_name).limit(2000)
    )
    return [(p, int(n)) for p, n in rows.all()]


# Transitions ------------------------------------------------------------------------------


def _expect(r: MtRequest, *statuses: str, action: str) -> None:
    if r.status not in statuses:
        raise Conflict(f"Cannot {action} a request that is {r.status}")


async def _territory_gp(
    session: AsyncSession, r: MtRequest, practitioner_id: uuid.UUID, *, lock: bool = False
) -> Practitioner:
    stmt = select(Practitioner).where(
        Practitioner.id == practitioner_id, Practitioner.territory_id == r.territory_id
    )
    if lock:
        stmt = stmt.with_for_update()
    practitioner = await session.scalar(stmt)
    if practitioner is None:
        raise ValidationFailed.field(["body", "practitioner_id"], "unknown practitioner")
    return practitioner


async def propose(
    session: AsyncSession, caller: Caller, request_id: uuid.UUID, data: schemas.ProposalIn
) -> MtView:
    caller.require(COORDINATOR, ADMIN)
    view = await get(session, caller, request_id, lock=True)
    r = view.request
    _expect(r, "waiting", action="propose a GP for")
    practitioner = await _territory_gp(session, r, data.practitioner_id)
    if await remaining_capacity(session, practitioner) <= 0:
        raise Conflict("This GP takes no new médecin traitant patients (capacity reached)")
    now = now_utc()
    r.status, r.proposed_practitioner_id, r.proposed_at = "proposed", practitioner.id, now
    r.proposal_deadline = now + timedelta(days=get_settings().mt_proposal_days)
    await session.flush()
    await history.proposed(session, r)
    await event(session, caller, "mt.proposed", r)
    view.proposed = practitioner
    return view


async def _answering(
    session: AsyncSession, caller: Caller, request_id: uuid.UUID, action: str
) -> MtView:
    caller.require(COORDINATOR, PRACTICE, ADMIN)
    view = await get(session, caller, request_id, lock=True)
    _expect(view.request, "proposed", action=action)
    if caller.role == PRACTICE and (
        view.proposed is None or view.proposed.practice_id != caller.practice_id
    ):
        raise NotFound("MT request not found")
    return view


async def accept(session: AsyncSession, caller: Caller, request_id: uuid.UUID) -> MtView:
    """The patient chose this GP and the GP agrees: attached. The GP row is locked while the
    remaining capacity is counted, so concurrent accepts can never exceed it."""
    view = await _answering(session, caller, request_id, "accept")
    r, now = view.request, now_utc()
    assert r.proposed_practitioner_id is not None and r.proposal_deadline is not None
    if r.proposal_deadline <= now:
        raise Conflict("The proposal has lapsed; propose again")
    practitioner = await _territory_gp(session, r, r.proposed_practitioner_id, lock=True)
    if await remaining_capacity(session, practitioner) <= 0:
        raise Conflict("This GP has no médecin traitant place left")
    r.status, r.attached_practitioner_id, r.attached_at = "attached", practitioner.id, now
    r.proposed_practitioner_id = r.proposed_at = r.proposal_deadline = None
    await session.flush()
    await history.answered(session, r.id, "accepted", now)
    await event(
        session,
        caller,
        "mt.attached",
        r,
        waiting_days=(now - r.registered_at).total_seconds() / 86400,
    )
    view.attached, view.proposed = practitioner, None
    return view


async def _back_to_waiting(session: AsyncSession, r: MtRequest) -> None:
    r.status = "waiting"
    r.proposed_practitioner_id = r.proposed_at = r.proposal_deadline = None
    await session.flush()


async def decline(
    session: AsyncSession, caller: Caller, request_id: uuid.UUID, data: schemas.ReasonIn
) -> MtView:
    """The patient or the GP says no: back to the queue, with the original waiting time."""
    view = await _answering(session, caller, request_id, "decline")
    practitioner_id = view.request.proposed_practitioner_id
    by = data.declined_by if isinstance(data, schemas.DeclineIn) else None
    by = "practitioner" if caller.role == PRACTICE else by
    await history.answered(
        session, view.request.id, "declined", now_utc(), declined_by=by, reason=data.reason
    )
    await _back_to_waiting(session, view.request)
    await event(
        session, caller, "mt.declined", view.request, declined_practitioner=str(practitioner_id)
    )
    view.proposed = None
    return view


async def withdraw(
    session: AsyncSession, caller: Caller, request_id: uuid.UUID, data: schemas.ReasonIn
) -> MtView:
    caller.require(COORDINATOR, ADMIN)
    view = await get(session, caller, request_id, lock=True)
    r = view.request
    _expect(r, *OPEN, action="withdraw")
    was = r.status
    if was == "proposed":
        await history.answered(session, r.id, "withdrawn", now_utc())
    r.status, r.withdrawn_at, r.withdraw_reason = "withdrawn", now_utc(), data.reason
    r.proposed_practitioner_id = r.proposed_at = r.proposal_deadline = None
    r.attached_practitioner_id = None
    await session.flush()
    await event(session, caller, "mt.withdrawn", r, was=was)
    view.proposed = view.attached = None
    return view


async def expire_proposals(session: AsyncSession, *, now: datetime | None = None) -> dict[str, int]:
    """Job: proposals past their deadline go back to the queue (original waiting time kept)."""
    now = now or now_utc()
    lapsed = (
        await session.scalars(
            select(MtRequest)
            .where(MtRequest.status == "proposed", MtRequest.proposal_deadline <= now)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for r in lapsed:
        practitioner_id = r.proposed_practitioner_id
        await history.answered(session, r.id, "lapsed", now)
        await _back_to_waiting(session, r)
        await event(session, None, "mt.proposal_expired", r, practitioner=str(practitioner_id))
    return {"proposals_expired": len(lapsed)}
