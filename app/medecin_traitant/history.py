"""The story of each MT request: every GP proposed to it, when, and the answer (accepted,
declined by the patient or by the GP and why, lapsed, or ended by a withdrawal). Written by the
queue's transitions in the same transaction; flushes, never commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory.models import Practitioner
from app.medecin_traitant.models import MtProposal, MtRequest


async def proposed(session: AsyncSession, r: MtRequest) -> None:
    assert r.proposed_practitioner_id is not None and r.proposed_at is not None
    session.add(
        MtProposal(
            request_id=r.id,
            practitioner_id=r.proposed_practitioner_id,
            proposed_at=r.proposed_at,
            outcome="pending",
        )
    )
    await session.flush()


async def answered(
    session: AsyncSession,
    request_id: uuid.UUID,
    outcome: str,
    at: datetime,
    *,
    declined_by: str | None = None,
    reason: str | None = None,
    reason_code: str | None = None,
) -> None:
    """Close the pending proposal of the request (none for one proposed before the history
    existed: nothing to close)."""
    await session.execute(
        update(MtProposal)
        .where(MtProposal.request_id == request_id, MtProposal.outcome == "pending")
        .values(
            outcome=outcome,
            answered_at=at,
            declined_by=declined_by,
            reason=reason,
            reason_code=reason_code,
        )
        .execution_options(synchronize_session=False)
    )


def declined_by_patient(request_id: uuid.UUID, practitioner_id: Any) -> ColumnElement[bool]:
    """Whether the patient of this request has declined this GP."""
    return exists().where(
        MtProposal.request_id == request_id,
        MtProposal.practitioner_id == practitioner_id,
        MtProposal.declined_by == "patient",
    )


@dataclass
class ProposalLine:
    practitioner: Practitioner
    proposed_at: datetime
    outcome: str
    answered_at: datetime | None
    declined_by: str | None
    reason: str | None
    reason_code: str | None


async def of_request(session: AsyncSession, request_id: uuid.UUID) -> list[ProposalLine]:
    """Oldest first. The caller has already been allowed to read the request."""
    rows = await session.execute(
        select(MtProposal, Practitioner)
        .join(Practitioner, Practitioner.id == MtProposal.practitioner_id)
        .where(MtProposal.request_id == request_id)
        .order_by(MtProposal.proposed_at, MtProposal.id)
    )
    return [
        ProposalLine(
            pr, p.proposed_at, p.outcome, p.answered_at, p.declined_by, p.reason, p.reason_code
        )
        for p, pr in rows.all()
    ]
