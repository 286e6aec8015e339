"""SMART Scheduling Links: a `$bulk-publish` manifest and NDJSON files of Location, Schedule
and Slot, streamed from a server-side cursor so that memory stays flat whatever the size.

Without a key (caller None) the files hold the `public` slots and their Locations and
Schedules, as the specification expects a publisher to; a key shows what its role may see.
A public slot links to its practice's own booking page when the practice has one (and carries
no link otherwise: Créneau's agenda page is for platform accounts); other slots link to the
practitioner's Créneau agenda page, which a keyed reader can use."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clock import now_utc
from app.directory import readiness
from app.directory.models import Practice, Practitioner, Territory
from app.sas_bridge import fhir_resources as res
from app.sas_bridge.fhir_contexts import context_columns, visibility_for
from app.sas_bridge.fhir_search import fhir_status
from app.scheduling.models import Slot
from app.scheduling.rules import zone
from app.security import SAS_PLATFORM, Caller

TYPES = ("Location", "Schedule", "Slot")
BOOKING_DEEP_LINK = "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-deep-link"
BOOKING_PHONE = "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-phone"
SERVICE_TYPE = "http://terminology.hl7.org/CodeSystem/service-type"
GENERAL_PRACTICE = {"system": SERVICE_TYPE, "code": "124", "display": "General Practice"}
PUBLIC = ("public",)
_BATCH = 2000


def scope(caller: Caller | None) -> tuple[frozenset[uuid.UUID] | None, tuple[str, ...]]:
    """The territories (None: all) and slot visibilities this reader sees."""
    return (None, PUBLIC) if caller is None else visibility_for(caller)


def cache_control(caller: Caller | None) -> str:
    """Readers poll every few minutes: a short shared cache for the public files, a private
    one for a keyed view."""
    return "public, max-age=60" if caller is None else "private, max-age=60"


async def states(session: AsyncSession, caller: Caller | None) -> list[str]:
    """The départements the files cover (the specification's `state`)."""
    territories, _ = scope(caller)
    stmt = select(Territory.department).distinct().order_by(Territory.department)
    if territories is not None:
        stmt = stmt.where(Territory.id.in_(territories))
    if caller is None:
        stmt = stmt.where(_has_public_slots(Slot.territory_id == Territory.id))
    return list((await session.scalars(stmt)).all())


def manifest(
    base_url: str, request_url: str, since: datetime | None, covered: list[str]
) -> dict[str, Any]:
    suffix = f"?_since={since.isoformat()}" if since else ""
    return {
        "transactionTime": now_utc().isoformat(timespec="seconds"),
        "request": request_url,
        "output": [
            {
                "type": t,
                "url": f"{base_url}/fhir/$bulk-publish/{t}.ndjson{suffix}",
                "extension": {"state": covered},
            }
            for t in TYPES
        ],
        "error": [],
    }


def _has_public_slots(where: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(where, Slot.visibility == "public", Slot.end > now_utc())


def _contexts(caller: Caller | None) -> Select[Any]:
    territories, _ = scope(caller)
    stmt = (
        select(*context_columns())
        .select_from(Practitioner)
        .join(Practice, Practice.id == Practitioner.practice_id)
        .join(Territory, Territory.id == Practitioner.territory_id)
        .order_by(Practitioner.id)
    )
    if territories is not None:
        stmt = stmt.where(Practitioner.territory_id.in_(territories))
    if caller is None:
        stmt = stmt.where(_has_public_slots(Slot.practitioner_id == Practitioner.id))
    elif caller.role == SAS_PLATFORM:
        stmt = stmt.where(readiness.territory_ready(), readiness.practice_ready())
    return stmt


def _smart_slot(row: Any, base_url: str) -> dict[str, Any]:
    tz = zone(row.timezone)
    if row.visibility == "public":
        link = row.booking_url  # the practice's own page, or none
    else:
        link = f"{base_url}/agenda/{row.practitioner_id}"
    return res.resource(
        {
            "resourceType": "Slot",
            "id": str(row.id),
            "schedule": {"reference": f"Schedule/{row.practitioner_id}"},
            # SMART Scheduling Links know free and busy only.
            "status": "free" if row.fhir_status == "free" else "busy",
            "start": row.start.astimezone(tz).isoformat(timespec="seconds"),
            "end": row.end.astimezone(tz).isoformat(timespec="seconds"),
            "serviceType": [
                {"coding": [{"system": res.ACT_CODE, "code": res.MODALITY_CODE[row.modality]}]}
            ],
            "extension": [{"url": BOOKING_DEEP_LINK, "valueUrl": link} if link else None],
        }
    )


def _smart_schedule(ctx: res.Context) -> dict[str, Any]:
    """One Schedule per practitioner at its practice; its one actor is the Location."""
    if ctx.profession == "general_practitioner":
        service: dict[str, Any] = {"coding": [GENERAL_PRACTICE]}
    else:
        service = {"text": ctx.specialty or ctx.profession}
    return {
        "resourceType": "Schedule",
        "id": str(ctx.practitioner_id),
        "serviceType": [service],
        "actor": [{"reference": f"Location/{ctx.practice_id}"}],
    }


async def stream(
    factory: async_sessionmaker[AsyncSession],
    caller: Caller | None,
    type_: str,
    base_url: str,
    since: datetime | None,
) -> AsyncIterator[bytes]:
    """NDJSON lines, read in batches from a server-side cursor in a read-only transaction."""
    async with factory() as session:
        if type_ == "Slot":
            territories, visibilities = scope(caller)
            now = now_utc()
            stmt = (
                select(
                    Slot.id,
                    Slot.start,
                    Slot.end,
                    Slot.modality,
                    Slot.visibility,
                    Slot.practitioner_id,
                    fhir_status(now).label("fhir_status"),
                    Territory.timezone,
                    Practice.booking_url,
                )
                .join(Territory, Territory.id == Slot.territory_id)
                .join(Practitioner, Practitioner.id == Slot.practitioner_id)
                .join(Practice, Practice.id == Practitioner.practice_id)
                .where(Slot.visibility.in_(visibilities), Slot.end > now)
                .order_by(Slot.territory_id, Slot.start, Slot.id)
            )
            if territories is not None:
                stmt = stmt.where(Slot.territory_id.in_(territories))
            if caller is not None and caller.role == SAS_PLATFORM:
                stmt = stmt.where(Slot.practitioner_id.in_(readiness.ready_practitioner_ids()))
            if since is not None:
                stmt = stmt.where(Slot.updated_at >= since)
            result = await session.stream(stmt.execution_options(yield_per=_BATCH))
            async for partition in result.partitions(_BATCH):
                yield b"".join(_line(_smart_slot(row, base_url)) for row in partition)
            return
        result = await session.stream(_contexts(caller).execution_options(yield_per=_BATCH))
        seen: set[object] = set()
        async for partition in result.partitions(_BATCH):
            chunk = []
            for row in partition:
                ctx = res.Context(**row._asdict())
                if type_ == "Schedule":
                    chunk.append(_line(_smart_schedule(ctx)))
                elif ctx.practice_id not in seen:
                    seen.add(ctx.practice_id)
                    chunk.append(_line(res.location(ctx, base_url)))
            yield b"".join(chunk)


def _line(resource: dict[str, Any]) -> bytes:
    return json.dumps(resource, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
