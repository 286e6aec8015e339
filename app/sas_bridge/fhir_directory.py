"""The standard FHIR searches on the directory's resources: Practitioner, PractitionerRole,
Schedule and Location (the CPTS CapabilityStatement of the ANS guide requires `Schedule?actor`
and `Practitioner?identifier`). One statement a search, in the caller's scope (the platform
sees only what may be sent to it), paged with `_count` and `_offset`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.directory import readiness
from app.directory.models import Practice, Practitioner, Territory
from app.errors import BadRequest
from app.sas_bridge import fhir_resources as res
from app.sas_bridge.fhir_contexts import context_columns, visibility_for
from app.sas_bridge.fhir_params import DEFAULT_COUNT, MAX_COUNT, paging_number, rpps_value
from app.sas_bridge.fhir_searchset import paged_searchset
from app.security import SAS_PLATFORM, Caller

# The search parameters of each type besides `_count` and `_offset` (the CapabilityStatement
# declares exactly these).
PARAMS: dict[str, tuple[str, ...]] = {
    "Practitioner": ("_id", "identifier"),
    "PractitionerRole": ("_id", "practitioner"),
    "Schedule": ("_id", "actor"),
    "Location": ("_id", "identifier"),
}


@dataclass
class DirectoryQuery:
    type_: str
    ids: list[uuid.UUID] | None = None  # None: no filter; []: nothing matches
    practitioner_ids: list[uuid.UUID] | None = None
    practice_ids: list[uuid.UUID] | None = None
    rpps: list[str] | None = None
    count: int = DEFAULT_COUNT
    offset: int = 0


def _merge(old: list[Any] | None, new: list[Any]) -> list[Any]:
    """Repeated parameters are ANDed: the values common to both."""
    return new if old is None else [v for v in old if v in new]


def _ref_ids(value: str, types: tuple[str, ...]) -> list[uuid.UUID]:
    """`Type/<id>` (or `<base>/fhir/Type/<id>`, or a bare id) of one of `types`; others match
    nothing."""
    out = []
    for token in value.split(","):
        kind, _, ident = token.rstrip("/").rpartition("/")
        kind = kind.rsplit("/", 1)[-1]
        if kind and kind not in types:
            continue
        try:
            out.append(uuid.UUID(ident))
        except ValueError:
            continue  # an id this server never made: matches nothing
    return out


def _ids(value: str, name: str) -> list[uuid.UUID]:
    out = []
    for token in value.split(","):
        try:
            out.append(uuid.UUID(token))
        except ValueError as exc:
            raise BadRequest(f"{name}: {token!r} is not an id of this server") from exc
    return out


def _location_ids(value: str) -> list[uuid.UUID]:
    system = f"{get_settings().public_base_url}/fhir/Location"
    out = []
    for token in value.split(","):
        token_system, bar, ident = token.rpartition("|")
        if bar and token_system and token_system != system:
            continue
        try:
            out.append(uuid.UUID(ident))
        except ValueError:
            continue
    return out


def parse(type_: str, params: list[tuple[str, str]]) -> DirectoryQuery:
    q = DirectoryQuery(type_)
    allowed = PARAMS[type_]
    for name, value in params:
        if name == "_count":
            q.count = min(paging_number(name, value), MAX_COUNT)
        elif name == "_offset":
            q.offset = paging_number(name, value)
        elif name not in allowed:
            if name.startswith("_"):
                continue  # _format, _summary…: FHIR lets a server ignore them
            raise BadRequest(
                f"{name}: not a search parameter of {type_} here ({', '.join(allowed)})"
            )
        elif name == "_id":
            q.ids = _merge(q.ids, _ids(value, name))
        elif name == "identifier" and type_ == "Practitioner":
            found = [rpps_value(token) for token in value.split(",") if token]
            q.rpps = _merge(q.rpps, [r for r in found if r is not None])
        elif name == "identifier":
            q.practice_ids = _merge(q.practice_ids, _location_ids(value))
        elif name == "practitioner":
            q.practitioner_ids = _merge(q.practitioner_ids, _ref_ids(value, ("Practitioner",)))
        elif name == "actor":
            actors = _ref_ids(value, ("Practitioner", "PractitionerRole"))
            q.practitioner_ids = _merge(q.practitioner_ids, actors)
    return q


async def search(
    session: AsyncSession, caller: Caller, q: DirectoryQuery
) -> tuple[list[res.Context], int]:
    """The contexts of the page (one per practitioner, or per practice for Location) and the
    number of matches."""
    territories, _ = visibility_for(caller)
    by_practice = q.type_ == "Location"
    key = Practice.id if by_practice else Practitioner.id
    stmt = (
        select(*context_columns(), func.count().over().label("total"))
        .select_from(Practitioner)
        .join(Practice, Practice.id == Practitioner.practice_id)
        .join(Territory, Territory.id == Practitioner.territory_id)
    )
    if by_practice:  # one row a practice: its first practitioner carries it
        stmt = stmt.ext(distinct_on(Practice.id))
    if territories is not None:
        stmt = stmt.where(Practitioner.territory_id.in_(territories))
    if caller.role == SAS_PLATFORM:
        stmt = stmt.where(readiness.territory_ready(), readiness.practice_ready())
    if q.ids is not None:
        stmt = stmt.where(key.in_(q.ids))
    if q.practitioner_ids is not None:
        stmt = stmt.where(Practitioner.id.in_(q.practitioner_ids))
    if q.practice_ids is not None:
        stmt = stmt.where(Practice.id.in_(q.practice_ids))
    if q.rpps is not None:
        stmt = stmt.where(Practitioner.rpps.in_(q.rpps))
    if by_practice:
        inner = stmt.order_by(Practice.id, Practitioner.id).subquery()
        rows = (
            await session.execute(
                select(inner, func.count().over().label("matches"))
                .order_by(inner.c.practice_id)
                .limit(q.count)
                .offset(q.offset)
            )
        ).all()
        total = rows[0].matches if rows else 0
    else:
        rows = (await session.execute(stmt.order_by(key).limit(q.count).offset(q.offset))).all()
        total = rows[0].total if rows else 0
    if not rows and q.offset:
        total = await _count(session, stmt)
    fields = set(res.Context.__dataclass_fields__)
    contexts = [res.Context(**{k: v for k, v in r._asdict().items() if k in fields}) for r in rows]
    return contexts, total


async def _count(session: AsyncSession, stmt: Any) -> int:
    inner = stmt.subquery()
    return int(await session.scalar(select(func.count()).select_from(inner)) or 0)


def build(type_: str, ctx: res.Context, base_url: str) -> dict[str, Any]:
    if type_ == "Practitioner":
        return res.practitioner(ctx)
    if type_ == "PractitionerRole":
        return res.practitioner_role(ctx, base_url)
    if type_ == "Schedule":
        return res.schedule(ctx)
    return res.location(ctx, base_url)


def bundle(
    q: DirectoryQuery,
    contexts: list[res.Context],
    total: int,
    self_url: str,
    params: list[tuple[str, str]],
) -> dict[str, Any]:
    base = get_settings().public_base_url
    resources = [build(q.type_, ctx, base) for ctx in contexts]
    return paged_searchset(
        q.type_, resources, total=total, offset=q.offset, count=q.count,
        self_url=self_url, params=params, base=base,
    )  # fmt: skip
