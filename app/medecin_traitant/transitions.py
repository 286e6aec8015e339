"""A request's proposals and answers: a GP proposed, the patient's free choice (accepted,
declined by the patient or the GP, lapsed), the withdrawal. Each is kept in the history.

proposed → waiting on a decline or a lapsed deadline, keeping the original waiting time;
withdrawn from any open state. Services flush, never commit."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import now_utc
from app.config import get_settings
from app.directory.models import Practitioner
from app.errors import Conflict, NotFound, ValidationFailed
from app.medecin_traitant import history, schemas
from app.medecin_traitant.capacity import remaining_capacity
from app.medecin_traitant.models import MtRequest
from app.medecin_traitant.service import OPEN, MtView, event, get
from app.security import ADMIN, COORDINATOR, PRACTICE, Caller


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
    code = data.reason_code if isinstance(data, schemas.DeclineIn) else None
    await history.answered(
        session, view.request.id, "declined", now_utc(),
        declined_by=by, reason=data.reason, reason_code=code,
    )  # fmt: skip
    await _back_to_waiting(session, view.request)
    # Who and why as codes only: the free-text reason may speak of the patient.
    await event(
        session, caller, "mt.declined", view.request,
        declined_practitioner=str(practitioner_id), declined_by=by, reason_code=code,
    )  # fmt: skip
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
