"""SMART Scheduling Links: a `$bulk-publish` manifest and NDJSON files of Location, Schedule
and Slot, streamed from a server-side cursor so that memory stays flat whatever the size."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.directory import readiness
from app.directory.models import Practice, Practitioner, Territory
from app.sas_bridge import fhir_resources as res
from app.sas_bridge.fhir_search import context_columns, fhir_status, visibility_for
from app.scheduling.models import Slot
from app.scheduling.service import now_utc, zone
from app.security import SAS_PLATFORM, Caller

TYPES = ("Location", "Schedule", "Slot")
BOOKING_DEEP_LINK = "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-deep-link"
BOOKING_PHONE = "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-phone"
_BATCH = 2000


def manifest(base_url: str, request_url: str, since: datetime | None) -> dict[str, Any]:
    suffix = f"?_since={since.isoformat()}" if since else ""
    return {
        "transactionTime": now_utc().isoformat(timespec="seconds"),
        "request": request_url,
        "output": [
            {"type": t, "url": f"{base_url}/fhir/$bulk-publish/{t}.ndjson{suffix}"} for t in TYPES
        ],
        "error": [],
    }


def _contexts(caller: Caller) -> Select[Any]:
    territories, _ = visibility_for(caller)
    stmt = (
        select(*context_columns())
        .select_from(Practitioner)
        .join(Practice, Practice.id == Practitioner.practice_id)
        .join(Territory, Territory.id == Practitioner.territory_id)
        .order_by(Practitioner.id)
    )
    if territories is not None:
        stmt = stmt.where(Practitioner.territory_id.in_(territories))
    if caller.role == SAS_PLATFORM:
        stmt = stmt.where(readiness.territory_ready(), readiness.practice_ready())
    return stmt


def _smart_slot(row: Any, tz_name: str, base_url: str) -> dict[str, Any]:
    tz = zone(tz_name)
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
            "extension": [
                {"url": BOOKING_DEEP_LINK, "valueUrl": f"{base_url}/agenda/{row.practitioner_id}"}
            ],
        }
    )


def _smart_schedule(ctx: res.Context) -> dict[str, Any]:
    return {
        "resourceType": "Schedule",
        "id": str(ctx.practitioner_id),
        "actor": [
            {"reference": f"Location/{ctx.practice_id}"},
            {"reference": f"Practitioner/{ctx.practitioner_id}"},
        ],
    }


async def stream(
    factory: async_sessionmaker[AsyncSession],
    caller: Caller,
    type_: str,
    base_url: str,
    since: datetime | None,
) -> AsyncIterator[bytes]:
    """NDJSON lines, read in batches from a server-side cursor in a read-only transaction."""
    async with factory() as session:
        if type_ == "Slot":
            territories, visibilities = visibility_for(caller)
            now = now_utc()
            stmt = (
                select(
                    Slot.id,
                    Slot.start,
                    Slot.end,
                    Slot.modality,
                    Slot.practitioner_id,
                    fhir_status(now).label("fhir_status"),
                    Territory.timezone,
                )
                .join(Territory, Territory.id == Slot.territory_id)
                .where(Slot.visibility.in_(visibilities), Slot.end > now)
                .order_by(Slot.territory_id, Slot.start, Slot.id)
            )
            if territories is not None:
                stmt = stmt.where(Slot.territory_id.in_(territories))
            if caller.role == SAS_PLATFORM:
                stmt = stmt.where(Slot.practitioner_id.in_(readiness.ready_practitioner_ids()))
            if since is not None:
                stmt = stmt.where(Slot.updated_at >= since)
            result = await session.stream(stmt.execution_options(yield_per=_BATCH))
            async for partition in result.partitions(_BATCH):
                yield b"".join(_line(_smart_slot(row, row.timezone, base_url)) for row in partition)
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
