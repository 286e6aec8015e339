"""The médecin traitant queue."""

import hashlib
import io
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from app import csv_safety
from app.activity.audit import log_shown
from app.api.commune_names import name_communes
from app.api.deps import CallerDep, SessionDep
from app.bounds import MT_IMPORT_MAX_BYTES
from app.errors import PROBLEM_JSON, Problem, UnsupportedMediaType, ValidationFailed
from app.idempotency import IdempotencyKeyHeader, idempotent
from app.medecin_traitant import capacity, cpam_import, history, schemas, service, transitions
from app.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from app.security import ADMIN, COORDINATOR
from app.validators import StrictModel

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
        return await name_communes(
            session, service.render(await service.register(session, caller, body))
        )

    return await idempotent(session, caller, idempotency_key, "POST /v1/mt-requests", body, run)


class _ImportRequest(StrictModel):
    """What makes two imports the same request, for their Idempotency-Key."""

    file_sha256: str
    territory_id: uuid.UUID | None
    mapping: dict[str, str] | None


_MAPPING_DOC = (
    'JSON object, field → column header of the file: `{"family_name": "NOM", "given_name": '
    '"PRENOM", "birth_date": "DATE_NAISSANCE", "phone": "TELEPHONE"}`; fields: '
    "`family_name`, `given_name`, `birth_date`, `phone` (required), `ins`, `commune_insee`, "
    "`postal_code`, `ald`, `precarity`. Left out: guessed from the usual headers"
)
_IMPORT_BODY = {
    "required": True,
    "content": {
        "text/csv": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "mapping": {"type": "string", "description": _MAPPING_DOC},
                    "dry_run": {"type": "boolean"},
                    "territory_id": {"type": "string", "format": "uuid"},
                },
            }
        },
    },
}


def _option(loc: list[str | int], value: str | None, parse: Any) -> Any:
    if value is None:
        return None
    try:
        return parse(value)
    except (ValueError, ValidationError) as exc:
        raise ValidationFailed.field(loc, "invalid value") from exc


def _mapping(value: str) -> dict[str, str]:
    parsed = json.loads(value)
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
    ):
        raise ValueError("not an object of strings")
    return parsed


def _flag(value: str) -> bool:
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise ValueError("not a boolean")


async def _import_input(
    request: Request, options: dict[str, str | None]
) -> tuple[bytes, dict[str, str | None]]:
    """The file and the options (query parameters, or the multipart form's fields)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "text/csv":
        return await request.body(), options
    if media != "multipart/form-data":
        raise UnsupportedMediaType("Send the file as text/csv or multipart/form-data")
    form = await request.form(max_files=1, max_fields=10, max_part_size=MT_IMPORT_MAX_BYTES)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ValidationFailed.field(["body", "file"], "required: the CSV file")
    data = await upload.read(MT_IMPORT_MAX_BYTES + 1)
    for name in options:
        value = form.get(name)
        if isinstance(value, str):
            if options[name] is not None:
                raise ValidationFailed.field(["body", name], "given twice (query and form)")
            options[name] = value
    return data, options


@router.post(
    "/imports",
    response_model=schemas.MtImportOut,
    openapi_extra={"requestBody": _IMPORT_BODY},
    responses={
        415: {
            "description": "Neither text/csv nor multipart/form-data",
            "model": Problem,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        },
        422: {
            "description": "Unreadable file, unknown column in the mapping, a required "
            "field not mapped, beyond the bounds, or Idempotency-Key missing"
        },
    },
)
async def import_list(
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    dry_run: Annotated[str | None, Query(description="`true`: a preview, nothing written")] = None,
    territory_id: Annotated[str | None, Query(description="Needed for several territories")] = None,
    mapping: Annotated[str | None, Query(max_length=4000, description=_MAPPING_DOC)] = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response | schemas.MtImportOut:
    """Import the Assurance Maladie's list of patients without a médecin traitant (CSV with a
    header, `;` or `,` separated, UTF-8 or Windows-1252): each valid line a request with
    source `assurance_maladie`; a patient already in the queue (or earlier in the file) is
    merged into their request, never given a second place. Each line's errors are reported
    (line number, field, French message) and the others imported. `dry_run=true` answers
    what the import would do without writing anything; otherwise an `Idempotency-Key` is
    required. Coordinators (an admin names the territory)."""
    caller.require(COORDINATOR, ADMIN)
    data, options = await _import_input(
        request, {"dry_run": dry_run, "territory_id": territory_id, "mapping": mapping}
    )
    is_dry = bool(_option(["query", "dry_run"], options["dry_run"], _flag))
    territory = _option(["query", "territory_id"], options["territory_id"], uuid.UUID)
    columns = _option(["query", "mapping"], options["mapping"], _mapping)

    async def run() -> schemas.MtImportOut:
        imported = await cpam_import.import_list(
            session, caller, data, territory_id=territory, mapping=columns, dry_run=is_dry
        )
        return await name_communes(session, imported)

    if is_dry:
        return await run()
    fingerprint = _ImportRequest(
        file_sha256=hashlib.sha256(data).hexdigest(), territory_id=territory, mapping=columns
    )
    return await idempotent(
        session, caller, idempotency_key, "POST /v1/mt-requests/imports", fingerprint, run,
        status_code=200,
    )  # fmt: skip


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
    items = await name_communes(session, [service.render(v) for v in views])
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
    item = await name_communes(
        session, service.render(await service.get(session, caller, request_id))
    )
    await log_shown(session, caller, "mt_request", [item], "read")
    return item


@router.get(
    "/{request_id}/proposals", response_model=list[schemas.ProposalOut], responses=_RESPONSES
)
async def proposals(
    request_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> list[schemas.ProposalOut]:
    """The request's story, oldest first: every GP proposed, when, and the answer (accepted;
    declined, by whom and why; lapsed; closed by a withdrawal). Coordinators."""
    caller.require(COORDINATOR, ADMIN)
    await service.get(session, caller, request_id)
    return [
        schemas.ProposalOut(
            practitioner=schemas.PractitionerRef.model_validate(line.practitioner),
            proposed_at=line.proposed_at,
            outcome=line.outcome,
            answered_at=line.answered_at,
            declined_by=line.declined_by,
            reason_code=line.reason_code,
            reason=line.reason,
        )
        for line in await history.of_request(session, request_id)
    ]


@router.get("/{request_id}/candidates", response_model=list[schemas.CandidateOut])
async def candidates(
    request_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> list[schemas.CandidateOut]:
    """GPs with médecin traitant places left, honouring the patient's preferences, nearest to
    the patient's commune first."""
    return await name_communes(session, await capacity.candidates(session, caller, request_id))


@router.post("/{request_id}/proposals", response_model=schemas.MtRequestOut, responses=_RESPONSES)
async def propose(
    request_id: uuid.UUID, body: schemas.ProposalIn, session: SessionDep, caller: CallerDep
) -> schemas.MtRequestOut:
    """Propose a GP; the answer is due by `proposal_deadline` (MT_PROPOSAL_DAYS)."""
    return await name_communes(
        session, service.render(await transitions.propose(session, caller, request_id, body))
    )


@router.post("/{request_id}/accept", response_model=schemas.MtRequestOut, responses=_RESPONSES)
async def accept(
    request_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> schemas.MtRequestOut:
    """The patient chose the proposed GP: attached; the GP's remaining capacity drops by one."""
    return await name_communes(
        session, service.render(await transitions.accept(session, caller, request_id))
    )


@router.post("/{request_id}/decline", response_model=schemas.MtRequestOut, responses=_RESPONSES)
async def decline(
    request_id: uuid.UUID, body: schemas.DeclineIn, session: SessionDep, caller: CallerDep
) -> schemas.MtRequestOut:
    """Back to the queue, keeping the original waiting time."""
    return await name_communes(
        session, service.render(await transitions.decline(session, caller, request_id, body))
    )


@router.post("/{request_id}/withdraw", response_model=schemas.MtRequestOut, responses=_RESPONSES)
async def withdraw(
    request_id: uuid.UUID, body: schemas.ReasonIn, session: SessionDep, caller: CallerDep
) -> schemas.MtRequestOut:
    """The patient leaves the queue (found a GP alone, moved away...), with a reason."""
    return await name_communes(
        session, service.render(await transitions.withdraw(session, caller, request_id, body))
    )
