"""The médecin traitant queue: registration by a key, reading (who sees which request), the
rendering of a request and its activity events. Priority is in `priority`, GP capacity and
candidates in `capacity`, the proposals and the patient's answers in `transitions`.

States: waiting → proposed → attached; proposed → waiting on a decline or a lapsed deadline;
withdrawn from any open state. The waiting time always counts from the first registration,
so a decline never costs the patient their place. Services flush, never commit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.activity.service import record
from app.clock import now_utc
from app.directory.models import Practitioner
from app.errors import Conflict, NotFound, ValidationFailed
from app.medecin_traitant import schemas
from app.medecin_traitant.models import MtRequest
from app.medecin_traitant.priority import MAX_PRIORITY, counted, is_70, priority_expr
from app.pagination import cursor_instant, cursor_int, cursor_uuid, decode_cursor, encode_cursor
from app.patient_data import PatientIn, patient_columns, patient_out
from app.security import ADMIN, COORDINATOR, PRACTICE, REGULATOR, Caller

OPEN = ("waiting", "proposed", "attached")


def same_patient(territory_id: uuid.UUID, patient: PatientIn) -> tuple[ColumnElement[bool], ...]:
    """An open request of the territory for this patient: the same INS, or the same name,
    birth date and phone (whoever registered it). One patient, one place in the queue."""
    return (
        MtRequest.territory_id == territory_id,
        # The unique indexes' own predicate, written inline (the status check makes it the
        # open statuses): a prepared statement's generic plan then probes those two indexes
        # instead of reading the territory's whole queue for each patient (an import: 5,000).
        MtRequest.status != literal("withdrawn", literal_execute=True),
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


@dataclass
class MtView:
    request: MtRequest
    proposed: Practitioner | None
    attached: Practitioner | None
    show_patient: bool


def render(view: MtView, tz_now: datetime | None = None) -> schemas.MtRequestOut:
    r, now = view.request, tz_now or now_utc()
    aged = is_70(r.patient_birth_date, now.date())
    ald, precarity = counted(r)
    met = (("ald", ald), ("70+", aged), ("precarity", precarity))
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
        aged_70_or_more=aged,
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


def event_row(caller: Caller | None, type_: str, r: MtRequest, **data: Any) -> dict[str, Any]:
    """A request's activity event (`record_many`'s shape): the criteria counted, no patient
    data."""
    aged = is_70(r.patient_birth_date, now_utc().date())
    ald, precarity = counted(r)
    return {
        "type": type_,
        "territory_id": r.territory_id,
        "practitioner_id": r.attached_practitioner_id or r.proposed_practitioner_id,
        "subject_id": r.id,
        "actor_key_id": caller.key_id if caller else None,
        "data": {
            "priority": int(ald) + int(precarity) + int(aged),
            "ald": ald,
            "precarity": precarity,
            "aged_70": aged,
            "source": r.source,
            **data,
        },
    }


async def event(
    session: AsyncSession, caller: Caller | None, type_: str, r: MtRequest, **data: Any
) -> None:
    row = event_row(caller, type_, r, **data)
    await record(session, row.pop("type"), **row.pop("data"), **row)


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
        readable = visible(caller).with_only_columns(MtRequest.id).where(MtRequest.id == existing)
        existing = await session.scalar(readable)
    return Conflict(
        "This patient is already registered in this territory",
        existing_id=str(existing) if existing else None,
    )


# Reading ----------------------------------------------------------------------------------

_Proposed = aliased(Practitioner)
_Attached = aliased(Practitioner)


def visible(caller: Caller) -> Select[MtRequest, Practitioner | None, Practitioner | None]:
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
    stmt = visible(caller).where(MtRequest.id == request_id)
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
    stmt = visible(caller).add_columns(prio.label("prio"))
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
