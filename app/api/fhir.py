"""FHIR R4 under /fhir, in the shape of the ANS SAS guide (application/fhir+json)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, StreamingResponse

from app.api.deps import CallerDep, OptionalCallerDep, SessionDep
from app.config import get_settings
from app.directory.models import RegulatorAccount
from app.errors import BadRequest, NotFound
from app.sas_bridge import (
    accounts,
    bulk_publish,
    fhir_appointments,
    fhir_contexts,
    fhir_directory,
    fhir_params,
    fhir_search,
    fhir_slot_query,
)
from app.sas_bridge import fhir_resources as res
from app.sas_bridge.capability import capability_statement
from app.sas_bridge.fhir_errors import FhirResponse
from app.security import ADMIN, SAS_PLATFORM

router = APIRouter(prefix="/fhir", tags=["FHIR (SAS guide)"])


def fhir(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return FhirResponse(body, status_code=status)


def _id(value: str, type_: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise NotFound(f"{type_}/{value} not found") from exc


@router.get("/metadata")
async def metadata(request: Request) -> JSONResponse:
    """The CapabilityStatement (no key needed)."""
    return fhir(capability_statement(get_settings().public_base_url, request.app.version))


@router.get("/Slot")
async def search_slots(request: Request, session: SessionDep, caller: CallerDep) -> JSONResponse:
    """Slot search. The guide's search (`schedule.actor:Practitioner.identifier`, up to 25 and
    more, with or without the `8` prefix; `start=ge…&start=le…`; `status=free`; the four
    `_include`s) returns every match in one Bundle with one `self` link; other searches are
    paged with `_count` and a `next` link."""
    params = list(request.query_params.multi_items())
    q = fhir_slot_query.parse(params)
    rows, total = await fhir_search.search_rows(session, caller, q)
    base = get_settings().public_base_url
    query = request.url.query
    self_url = f"{base}/fhir/Slot" + (f"?{query}" if query else "")
    return fhir(fhir_search.bundle(rows, total, q, self_url, params))


@router.get("/$bulk-publish")
async def bulk_publish_manifest(
    request: Request, session: SessionDep, caller: OptionalCallerDep
) -> JSONResponse:
    """SMART Scheduling Links manifest: NDJSON files of Location, Schedule and Slot, each with
    the départements it covers (`extension.state`). Without a key: the `public` slots; with
    one: what its role may see. `_since` limits the Slot file to slots changed since then."""
    if caller is not None:
        caller.require(*fhir_contexts.READERS)
    since = _since(request)
    base = get_settings().public_base_url
    query = request.url.query
    request_url = f"{base}/fhir/$bulk-publish" + (f"?{query}" if query else "")
    covered = await bulk_publish.states(session, caller)
    response = JSONResponse(bulk_publish.manifest(base, request_url, since, covered))
    response.headers["Cache-Control"] = bulk_publish.cache_control(caller)
    return response


@router.get("/$bulk-publish/{type_}.ndjson")
async def bulk_publish_file(
    type_: str, request: Request, caller: OptionalCallerDep
) -> StreamingResponse:
    """One NDJSON file, streamed: flat memory whatever the number of slots."""
    if caller is not None:
        caller.require(*fhir_contexts.READERS)
    if type_ not in bulk_publish.TYPES:
        raise NotFound(f"No {type_} file: the files are Location, Schedule and Slot")
    stream = bulk_publish.stream(
        request.app.state.sessionmaker,
        caller,
        type_,
        get_settings().public_base_url,
        _since(request) if type_ == "Slot" else None,
    )
    response = StreamingResponse(stream, media_type="application/fhir+ndjson")
    response.headers["Cache-Control"] = bulk_publish.cache_control(caller)
    return response


def _since(request: Request) -> datetime | None:
    raw = request.query_params.get("_since")
    if raw is None:
        return None
    _, when = fhir_params.parse_date(raw, "_since")
    return when


@router.get("/Slot/{slot_id}")
async def read_slot(slot_id: str, session: SessionDep, caller: CallerDep) -> JSONResponse:
    q = fhir_slot_query.SlotQuery(slot_ids=[_id(slot_id, "Slot")], count=1)
    rows, _ = await fhir_search.search_rows(session, caller, q)
    if not rows:
        raise NotFound(f"Slot/{slot_id} not found")
    return fhir(res.slot(rows[0], get_settings().public_base_url))


async def _fhir_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise BadRequest("The body is not valid JSON") from exc


def _saved(account: Any, created: bool) -> JSONResponse:
    base = get_settings().public_base_url
    response = fhir(accounts.as_fhir(account), 201 if created else 200)
    response.headers["Location"] = f"{base}/fhir/Practitioner/{account.id}"
    return response


@router.post("/Practitioner", status_code=201)
async def create_regulator_account(
    request: Request, session: SessionDep, caller: CallerDep
) -> JSONResponse:
    """The platform creates a regulator account (sas_platform). Replaying it, or posting an
    account that already exists, updates it (200) instead of duplicating it."""
    caller.require(SAS_PLATFORM)
    data = accounts.parse_practitioner(await _fhir_body(request))
    account, created = await accounts.upsert(session, caller, data)
    return _saved(account, created)


@router.put("/Practitioner")
async def update_regulator_account(
    request: Request, session: SessionDep, caller: CallerDep, identifier: str | None = None
) -> JSONResponse:
    """Conditional update `?identifier=[<system>|]<value>`, as FHIR defines it: the URL's
    criteria choose the account (none: created with the URL's identifier, 201; one: updated,
    200; several: 412); a body whose identifier contradicts the URL is a 400. `active=false`
    withdraws the right to book."""
    caller.require(SAS_PLATFORM)
    criteria = accounts.parse_identifier(identifier)
    data = accounts.parse_practitioner(await _fhir_body(request), identifier_required=False)
    account, created = await accounts.conditional_update(session, caller, data, criteria)
    return _saved(account, created)


def _searcher(type_: str) -> Callable[..., Any]:
    async def search(request: Request, session: SessionDep, caller: CallerDep) -> JSONResponse:
        params = list(request.query_params.multi_items())
        q = fhir_directory.parse(type_, params)
        contexts, total = await fhir_directory.search(session, caller, q)
        query = request.url.query
        self_url = f"{get_settings().public_base_url}/fhir/{type_}" + (f"?{query}" if query else "")
        return fhir(fhir_directory.bundle(q, contexts, total, self_url, params))

    search.__name__ = f"search_{type_.lower()}"
    search.__doc__ = (
        f"Search {type_}: {', '.join(fhir_directory.PARAMS[type_])}, `_count` and `_offset` "
        "(a `next` link), in the caller's scope."
    )
    return search


for _type in fhir_directory.PARAMS:
    router.add_api_route(f"/{_type}", _searcher(_type), methods=["GET"], summary=f"Search {_type}")


def _reader(
    type_: str, build: Callable[[res.Context, str], dict[str, Any]], by_practice: bool = False
) -> Callable[..., Any]:
    async def read(resource_id: str, session: SessionDep, caller: CallerDep) -> JSONResponse:
        ident = _id(resource_id, type_)
        if by_practice:
            found = await fhir_contexts.contexts(session, caller, practice_id=ident)
        elif type_ in ("HealthcareService", "Organization"):
            found = [
                c for c in await fhir_contexts.contexts(session, caller) if c.territory_id == ident
            ][:1]
        else:
            found = await fhir_contexts.contexts(session, caller, practitioner_id=ident)
        if not found and type_ == "Practitioner" and caller.role in (SAS_PLATFORM, ADMIN):
            account = await session.get(RegulatorAccount, ident)
            if account is not None:
                return fhir(accounts.as_fhir(account))
        if not found:
            raise NotFound(f"{type_}/{resource_id} not found")
        return fhir(build(found[0], get_settings().public_base_url))

    read.__name__ = f"read_{type_.lower()}"
    return read


_BUILDERS: tuple[tuple[str, Callable[[res.Context, str], dict[str, Any]], bool], ...] = (
    ("Schedule", lambda ctx, _: res.schedule(ctx), False),
    ("Practitioner", lambda ctx, _: res.practitioner(ctx), False),
    ("PractitionerRole", res.practitioner_role, False),
    ("Location", res.location, True),
    ("HealthcareService", lambda ctx, _: res.healthcare_service(ctx), False),
    ("Organization", lambda ctx, _: res.organization(ctx), False),
)
for _type, _build, _by_practice in _BUILDERS:
    router.add_api_route(
        f"/{_type}/{{resource_id}}",
        _reader(_type, _build, _by_practice),
        methods=["GET"],
        summary=f"Read a {_type}",
    )


@router.get("/Appointment")
async def search_appointments(
    request: Request, session: SessionDep, caller: CallerDep
) -> JSONResponse:
    """Bookings as Appointments, visible by role as in `/v1/bookings`: `date` (or `start`)
    with ge/gt/le/lt/eq, `status` (pending, booked, cancelled, fulfilled, noshow),
    `identifier`, `practitioner`, `slot`, `_id`, `_count` and `_offset` (a `next` link)."""
    params = list(request.query_params.multi_items())
    q = fhir_appointments.parse(params)
    resources, total = await fhir_appointments.search(session, caller, q)
    query = request.url.query
    self_url = f"{get_settings().public_base_url}/fhir/Appointment" + (f"?{query}" if query else "")
    return fhir(fhir_appointments.bundle(resources, total, q, self_url, params))


@router.get("/Appointment/{appointment_id}")
async def read_appointment(
    appointment_id: str, session: SessionDep, caller: CallerDep
) -> JSONResponse:
    q = fhir_appointments.AppointmentQuery(ids=[_id(appointment_id, "Appointment")], count=1)
    resources, _ = await fhir_appointments.search(session, caller, q)
    if not resources:
        raise NotFound(f"Appointment/{appointment_id} not found")
    return fhir(resources[0])
