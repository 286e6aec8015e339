"""The FHIR Slot search: the ANS SAS guide's search (chained practitioner identifiers, the four
`_include`s, every match in one Bundle) and ordinary paged searches, through one query.

Whatever the number of practitioners asked for, the search is two SQL statements: the slots
(with their practitioner's id and the number of matches), then those practitioners with their
practice and territory, once each (fhir_contexts.py); the included resources are built from
them. The search's parameters are read by fhir_slot_query.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    String,
    Uuid,
    and_,
    bindparam,
    case,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import now_utc
from app.config import get_settings
from app.db import DriverStatement
from app.directory import readiness
from app.directory.models import Practice, Practitioner, Territory
from app.errors import BadRequest
from app.sas_bridge import fhir_resources as res
from app.sas_bridge.fhir_contexts import context_statement, visibility_for
from app.sas_bridge.fhir_params import any_param, count_only, date_condition
from app.sas_bridge.fhir_slot_query import GUIDE_MAX_RESULTS, SlotQuery
from app.scheduling.models import Slot
from app.scheduling.queries import bookable
from app.security import SAS_PLATFORM, Caller


def fhir_status(now: datetime | ColumnElement[datetime]) -> ColumnElement[str]:
    """FHIR Slot.status from the one availability predicate."""
    return case(
        (bookable(now), "free"),
        (and_(Slot.status == "held", Slot.hold_expires_at > now), "busy-tentative"),
        (Slot.status == "booked", "busy"),
        else_="busy-unavailable",
    )


@dataclass(frozen=True)
class _Shape:
    """What a search's statement depends on besides its values: searches of one shape share
    one statement, built once, whose values are bound at execution."""

    instance_wide: bool
    bounds: tuple[str, ...]  # the start parameters' prefixes
    status: str  # "": any; "free": the availability predicate; "list": FHIR statuses
    by_practitioner: bool
    by_rpps: bool
    by_slot: bool
    guide: bool
    ready_only: bool = False  # the platform: only territories and practices it can be sent
    day_bounds: tuple[str, ...] = ()  # the prefixes of start parameters that are dates


def build_statement(
    caller: Caller, q: SlotQuery, now: datetime | None = None
) -> tuple[Any, dict[str, Any]]:
    """The slots of a Slot search, with their practitioner's id and the number of matches (the
    first of the search's two statements), and the values to run it with (bench/sas.py runs
    the same)."""
    shape, values = _plan(caller, q, now)
    return _slot_statement(shape), values


def _plan(
    caller: Caller, q: SlotQuery, now: datetime | None = None
) -> tuple[_Shape, dict[str, Any]]:
    territories, visibilities = visibility_for(caller)
    values: dict[str, Any] = {"now": now or now_utc(), "visibilities": list(visibilities)}
    if territories is not None:
        values["territories"] = list(territories)
    for i, (_, when) in enumerate(q.start_bounds):
        values[f"start_{i}"] = when
    for i, (_, low, high) in enumerate(q.start_days):
        values[f"day_low_{i}"], values[f"day_high_{i}"] = low, high
    status = "free" if q.statuses == ["free"] else "list" if q.statuses else ""
    if status == "list":
        values["statuses"] = q.statuses
    if q.practitioner_ids:
        values["practitioner_ids"] = q.practitioner_ids
    if q.rpps is not None:
        values["rpps"] = q.rpps or ["-"]
    if q.slot_ids:
        values["slot_ids"] = q.slot_ids
    if q.guide_search:
        values["limit"] = GUIDE_MAX_RESULTS + 1
    else:
        values["limit"], values["offset"] = q.count, q.offset
    shape = _Shape(
        instance_wide=territories is None,
        bounds=tuple(prefix for prefix, _ in q.start_bounds),
        status=status,
        by_practitioner=bool(q.practitioner_ids),
        by_rpps=q.rpps is not None,
        by_slot=bool(q.slot_ids),
        guide=q.guide_search,
        ready_only=caller.role == SAS_PLATFORM,
        day_bounds=tuple(prefix for prefix, _, _ in q.start_days),
    )
    return shape, values


def _day_condition(prefix: str, i: int) -> ColumnElement[bool]:
    """FHIR date search on an instant: the date is a period [low, high) of local days of the
    slot's territory (its zone read by PostgreSQL, DST included)."""

    def local(name: str) -> ColumnElement[datetime]:
        wall = bindparam(name, type_=DateTime(timezone=False))
        return func.timezone(Territory.timezone, wall, type_=DateTime(timezone=True))

    low, high = local(f"day_low_{i}"), local(f"day_high_{i}")
    conditions: dict[str, ColumnElement[bool]] = {
        "ge": Slot.start >= low,
        "gt": Slot.start >= high,
        "le": Slot.start < high,
        "lt": Slot.start < low,
        "eq": and_(Slot.start >= low, Slot.start < high),
    }
    return conditions[prefix]


@lru_cache(maxsize=256)
def _slot_statement(shape: _Shape) -> Any:
    now = bindparam("now", type_=DateTime(timezone=True))
    status = fhir_status(now).label("fhir_status")
    stmt = select(
        Slot.id,
        Slot.start,
        Slot.end,
        Slot.modality,
        Slot.visibility,
        status,
        Slot.practitioner_id,
        func.count().over().label("total"),
    ).where(Slot.visibility == any_param("visibilities", String))
    if not shape.instance_wide:
        stmt = stmt.where(Slot.territory_id == any_param("territories", Uuid))
    for i, prefix in enumerate(shape.bounds):
        when = bindparam(f"start_{i}", type_=DateTime(timezone=True))
        stmt = stmt.where(date_condition(Slot.start, prefix, when))
    if shape.day_bounds or shape.ready_only:
        stmt = stmt.join(Territory, Territory.id == Slot.territory_id)
    for i, prefix in enumerate(shape.day_bounds):
        stmt = stmt.where(_day_condition(prefix, i))
    if shape.status == "free":
        stmt = stmt.where(bookable(now))  # the common case keeps the plain predicate
    elif shape.status == "list":
        stmt = stmt.where(status == any_param("statuses", String))
    if shape.by_practitioner:
        stmt = stmt.where(Slot.practitioner_id == any_param("practitioner_ids", Uuid))
    if shape.by_rpps or shape.ready_only:
        stmt = stmt.join(Practitioner, Practitioner.id == Slot.practitioner_id)
    if shape.by_rpps:
        stmt = stmt.where(Practitioner.rpps == any_param("rpps", String))
    if shape.by_slot:
        stmt = stmt.where(Slot.id == any_param("slot_ids", Uuid))
    if shape.ready_only:  # joins: a subquery of ready practitioners cost twice as much
        stmt = stmt.join(Practice, Practice.id == Practitioner.practice_id).where(
            readiness.territory_ready(), readiness.practice_ready()
        )
    stmt = stmt.order_by(Slot.start, Slot.id).limit(bindparam("limit", type_=Integer))
    if shape.guide:
        return stmt
    return stmt.offset(bindparam("offset", type_=Integer))


@lru_cache(maxsize=256)
def _slot_driver_statement(shape: _Shape) -> DriverStatement:
    return DriverStatement(_slot_statement(shape))


_PRACTITIONER_ID = 6  # its column in _slot_statement


@cache
def _context_driver_statement() -> DriverStatement:
    return DriverStatement(context_statement())


async def search_rows(
    session: AsyncSession, caller: Caller, q: SlotQuery
) -> tuple[list[res.SlotRow], int]:
    """The slots of a search with their contexts, and the number of matches: two statements
    whatever the number of slots and practitioners (a third counts when an offset is past
    the end)."""
    shape, values = _plan(caller, q)
    # Run on the driver connection of the session's transaction (as the key lookup is): the
    # Core execution layer would cost more than PostgreSQL spends on these statements.
    rows = await _slot_driver_statement(shape).fetch(session, **values)
    if q.guide_search and len(rows) > GUIDE_MAX_RESULTS:
        raise BadRequest(
            f"More than {GUIDE_MAX_RESULTS} slots match: narrow the start range or practitioners"
        )
    total = rows[0]["total"] if rows else 0
    if not rows and q.offset:
        total = await count_only(session, _slot_statement(shape), values)
    if not rows:
        return [], total
    found = list(dict.fromkeys(r[_PRACTITIONER_ID] for r in rows))
    contexts = await _context_driver_statement().fetch(session, practitioner_ids=found)
    # one Context per practitioner, not per slot
    known = {c["practitioner_id"]: res.Context(**dict(c.items())) for c in contexts}
    if len(known) < len(found):
        # A practitioner deleted between the two statements (its slots went with it): its
        # slots are left out, as if the first statement had run after the deletion.
        kept = [r for r in rows if r[_PRACTITIONER_ID] in known]
        total -= len(rows) - len(kept)
        rows = kept
    out = [
        res.SlotRow(id_, start, end, modality, visibility, fhir_status, known[practitioner_id])
        for id_, start, end, modality, visibility, fhir_status, practitioner_id, _ in rows
    ]
    return out, total


_MATCH = {"mode": "match"}


def _entry(base: str, resource: dict[str, Any], mode: str) -> dict[str, Any]:
    return {
        "fullUrl": f"{base}/fhir/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "search": {"mode": mode},
    }


def bundle(
    rows: list[res.SlotRow], total: int, q: SlotQuery, self_url: str, params: list[tuple[str, str]]
) -> dict[str, Any]:
    base = get_settings().public_base_url
    writer = res.SlotWriter(base)
    entries = []
    for r in rows:
        id_ = str(r.id)
        entries.append(
            {
                "fullUrl": f"{base}/fhir/Slot/{id_}",
                "resource": writer.slot(r, id_),
                "search": _MATCH,
            }
        )
    included: dict[tuple[str, str], dict[str, Any]] = {}

    def include(resource: dict[str, Any]) -> None:
        included.setdefault((resource["resourceType"], resource["id"]), resource)

    schedules = "Slot:schedule" in q.includes
    actors = schedules and "Schedule:actor" in q.includes
    services = "Slot:service-type-reference" in q.includes
    organizations = services and "HealthcareService:organization" in q.includes
    territories: set[uuid.UUID] = set()  # the CPTS's two resources are made once a territory
    for ctx in {r.ctx.practitioner_id: r.ctx for r in rows}.values():
        if schedules:
            include(res.schedule(ctx))
        if actors:
            include(res.practitioner(ctx))
            include(res.practitioner_role(ctx, base))
        if ctx.territory_id in territories:
            continue
        territories.add(ctx.territory_id)
        if services:
            include(res.healthcare_service(ctx))
        if organizations:
            include(res.organization(ctx))
    entries += [_entry(base, resource, "include") for resource in included.values()]
    links = [{"relation": "self", "url": self_url}]
    if not q.guide_search and q.offset + len(rows) < total:
        following = [(k, v) for k, v in params if k != "_offset"]
        following.append(("_offset", str(q.offset + q.count)))
        links.append({"relation": "next", "url": f"{base}/fhir/Slot?{urlencode(following)}"})
    # Entries are complete resources already: the Bundle is not pruned again (costly).
    result: dict[str, Any] = {"resourceType": "Bundle"}
    if q.guide_search and actors and any(r.fhir_status == "free" for r in rows):
        # The guide's Bundle profile: one self link, at least a (free) Slot with its Schedule,
        # Practitioner and PractitionerRole. An empty answer (total 0, which the guide's text
        # asks for) cannot meet its 4 entries and does not claim it.
        result["meta"] = {"profile": [res.PROFILE["Bundle"]]}
    result |= {
        "type": "searchset",
        "total": total,
        "link": links,
    }
    if entries:
        result["entry"] = entries
    return result
