"""The médecin traitant queue."""

import io
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from app import csv_safety
from app.activity.audit import log_shown
from app.api.deps import CallerDep, SessionDep
from app.idempotency import IdempotencyKeyHeader, idempotent
from app.medecin_traitant import capacity, schemas, service, transitions
from app.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from app.security import COORDINATOR

router = APIRouter(prefix="/v1/mt-requests", tags=["médecin traitant"])
_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "Not found, or not visible to this key"},
    409: {"description": "Duplicate patient, forbidden transition or no capacity left"},
}
CSV_COLUMNS = (
    "id", "status", "priority", "criteria", "registered_at", "waiting_days", "source",
    "family_name", "given_name", "birth_date", "phone", "ins", "commune_insee",
    "proposed_practitioner_rpps", "attached_practitioner_rpps",
)  # fmt: skip


@router.post("", status_code=201, response_model=schemas.MtRequestOut, responses=_RESPONSES)
async def register(
    body: schemas.MtRequestIn,
    session: SessionDep,
    caller: CallerDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Register a patient looking for a médecin traitant. A patient already registered in the
    territory (same INS, or same name, birth date and phone) is a 409 naming the existing
    request in `existing_id`. Requires an `Idempotency-Key`."""

    async def run() -> schemas.MtRequestOut:
        return service.render(await service.register(session, caller, body))

    return await idempotent(session, caller, idempotency_key, "POST /v1/mt-requests", body, run)


def _csv(items: list[schemas.MtRequestOut]) -> str:
    out = io.StringIO()
    writer = csv_safety.writer(out)  # patients' names may start like formulas
    writer.writerow(CSV_COLUMNS)
    for r in items:
        p = r.patient
        writer.writerow(
            [
                r.id, r.status, r.priority, "+".join(r.criteria), r.registered_at.isoformat(),
                r.waiting_days, r.source,
                p.family_name if p else "", p.given_name if p else "",
                p.birth_date.isoformat() if p else "", p.phone if p else "",
                (p.ins or "") if p else "", (p.commune_insee or "") if p else "",
                r.proposed_practitioner.rpps if r.proposed_practitioner else "",
                r.attached_practitioner.rpps if r.attached_practitioner else "",
            ]
        )  # fmt: skip
    return out.getvalue()


@router.get(
    "",
    response_model=Page[schemas.MtRequestOut],
    responses={200: {"content": {"text/csv": {}}}},
)
async def list_requests(
    session: SessionDep,
    caller: CallerDep,
    status: schemas.MtStatus | None = None,
    priority: Annotated[int | None, Query(ge=0, le=3)] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Any:
    """The work list: fragile patients first (more criteria first: ALD, 70+, precarity), then
    the longest waiting. `Accept: text/csv` exports it (coordinators)."""
    views, next_cursor = await service.list_requests(
        session, caller, status=status, priority=priority, cursor=cursor, limit=limit
    )
    items = [service.render(v) for v in views]
    export = bool(accept and "text/csv" in accept)
    if export:
        caller.require(COORDINATOR)
    await log_shown(session, caller, "mt_request", items, "export" if export else "list")
    if export:
        return Response(
            _csv(items),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="mt-requests.csv"'},
        )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{request_id}", response_model=schemas.MtRequestOut, responses=_RESPONSES)
async def get_request(
    request_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> schemas.MtRequestOut:
    item = service.render(await service.get(session, caller, request_id))
    await log_shown(session, caller, "mt_request", [item], "read")
    return item


@router.get("/{request_id}/candidates", response_model=list[schemas.CandidateOut])
async def candidates(
    request_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> list[schemas.CandidateOut]:
    """GPs with médecin traitant places left, honouring the patient's preferences, nearest to
    the patient's commune first."""
    return await capacity.candidates(session, caller, request_id)


@router.post("/{request_id}/proposals", response_model=schemas.MtRequestOut, responses=_RESPONSES)
async def propose(
    request_id: uuid.UUID, body: schemas.ProposalIn, session: SessionDep, caller: CallerDep
) -> schemas.MtRequestOut:
    """Propose a GP; the answer is due by `proposal_deadline` (MT_PROPOSAL_DAYS)."""
    return service.render(await transitions.propose(session, caller, request_id, body))


@router.post("/{request_id}/accept", response_model=schemas.MtRequestOut, responses=_RESPONSES)
async def accept(
    request_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> schemas.MtRequestOut:
    """The patient chose the proposed GP: attached; the GP's remaining capacity drops by one."""
    return service.render(await transitions.accept(session, caller, request_id))


@router.post("/{request_id}/decline", response_model=schemas.MtRequestOut, responses=_RESPONSES)
async def decline(
    request_id: uuid.UUID, body: schemas.DeclineIn, session: SessionDep, caller: CallerDep
) -> schemas.MtRequestOut:
    """Back to the queue, keeping the original waiting time."""
    return service.render(await transitions.decline(session, caller, request_id, body))


@router.post("/{request_id}/withdraw", response_model=schemas.MtRequestOut, responses=_RESPONSES)
async def withdraw(
    request_id: uuid.UUID, body: schemas.ReasonIn, session: SessionDep, caller: CallerDep
) -> schemas.MtRequestOut:
    """The patient leaves the queue (found a GP alone, moved away...), with a reason."""
    return service.render(await transitions.withdraw(session, caller, request_id, body))
