"""Bookings read as FHIR Appointments under /fhir, visible by role exactly as in the JSON API
(the booking regulator, the slot's practice, the territory's coordinator).

No patient data goes into these resources: the patient stays in the JSON API, where every
read of it is logged. The operator (the platform's regulator account) is carried as the
guide's FrAppointmentOperator extension when the booking has one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.errors import BadRequest
from app.sas_bridge import fhir_resources as res
from app.sas_bridge.account_models import RegulatorAccount
from app.sas_bridge.appointments import STATUS, operator_extension
from app.sas_bridge.fhir_search import (
    DEFAULT_COUNT,
    MAX_COUNT,
    count_only,
    date_condition,
    paging_number,
    parse_date,
)
from app.scheduling.booking_models import Booking
from app.scheduling.booking_service import visible_bookings
from app.scheduling.service import zone
from app.security import Caller

# A live or lapsed hold is not an appointment yet: FHIR's `pending`.
READ_STATUS = {**STATUS, "held": "pending"}
BOOKING_STATUS = {fhir: ours for ours, fhir in READ_STATUS.items()}


@dataclass
class AppointmentQuery:
    date_bounds: list[tuple[str, datetime]] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    ids: list[uuid.UUID] = field(default_factory=list)
    practitioner_ids: list[uuid.UUID] = field(default_factory=list)
    slot_ids: list[uuid.UUID] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    offset: int = 0


def _ids(value: str, name: str, type_: str) -> list[uuid.UUID]:
    found = []
    for token in filter(None, value.split(",")):
        kind, _, raw = token.rpartition("/")
        if kind and kind.rsplit("/", 1)[-1] != type_:
            raise BadRequest(f"{name}: {token!r} is not a {type_} reference")
        try:
            found.append(uuid.UUID(raw))
        except ValueError as exc:
            raise BadRequest(f"{name}: {token!r} is not a known {type_} id") from exc
    return found


def _identifier(value: str) -> list[uuid.UUID]:
    """`system|value` tokens: Créneau's own appointment identifiers only."""
    system = get_settings().appointment_system
    found = []
    for token in filter(None, value.split(",")):
        token_system, _, raw = token.rpartition("|")
        if token_system and token_system != system:
            continue  # another system's identifier matches nothing here
        try:
            found.append(uuid.UUID(raw))
        except ValueError:
            continue
    return found


def parse(params: list[tuple[str, str]]) -> AppointmentQuery:
    q = AppointmentQuery()
    nothing = uuid.UUID(int=0)
    for name, value in params:
        if name in ("date", "start"):
            q.date_bounds.append(parse_date(value, name))
        elif name == "status":
            for code in value.split(","):
                if code not in BOOKING_STATUS:
                    raise BadRequest(f"status: {code!r} is not one of {', '.join(BOOKING_STATUS)}")
                q.statuses.append(BOOKING_STATUS[code])
        elif name == "_id":
            q.ids += _ids(value, name, "Appointment")
        elif name == "identifier":
            q.ids += _identifier(value) or [nothing]
        elif name in ("practitioner", "actor"):
            q.practitioner_ids += _ids(value, name, "Practitioner")
        elif name == "slot":
            q.slot_ids += _ids(value, name, "Slot")
        elif name == "_count":
            q.count = min(paging_number(name, value), MAX_COUNT)
        elif name == "_offset":
            q.offset = paging_number(name, value)
        # Other parameters (_format, _summary…) are ignored, as FHIR's lenient handling allows.
    return q


def appointment(
    booking: Booking, rpps: str, account: RegulatorAccount | None, timezone: str
) -> dict[str, Any]:
    """Times in the territory's offset, like every answer of the service."""
    tz = zone(timezone)
    settings = get_settings()
    body: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": str(booking.id),
        "identifier": [{"system": settings.appointment_system, "value": str(booking.id)}],
        "status": READ_STATUS[booking.status],
        "serviceType": [
            {"coding": [{"system": res.ACT_CODE, "code": res.MODALITY_CODE[booking.modality]}]}
        ],
        "start": booking.start.astimezone(tz).isoformat(timespec="seconds"),
        "end": booking.end.astimezone(tz).isoformat(timespec="seconds"),
        "created": (booking.booked_at or booking.created_at)
        .astimezone(tz)
        .isoformat(timespec="seconds"),
        "participant": [
            {
                "actor": {
                    "reference": f"Practitioner/{booking.practitioner_id}",
                    "identifier": res.rpps_identifier(rpps),
                },
                "status": "accepted",
            },
            {"actor": {"reference": f"Location/{booking.practice_id}"}, "status": "accepted"},
        ],
    }
    if booking.slot_id is not None:
        body["slot"] = [{"reference": f"Slot/{booking.slot_id}"}]
    if booking.cancel_reason and booking.status == "cancelled":
        body["cancelationReason"] = {"text": booking.cancel_reason}
    if account is not None:
        body["meta"] = {"profile": [res.PROFILE["Appointment"]]}
        body["extension"] = [operator_extension(account)]
    return body


async def search(
    session: AsyncSession, caller: Caller, q: AppointmentQuery
) -> tuple[list[dict[str, Any]], int]:
    """One statement: the visible bookings with practitioner, practice, zone and operator."""
    stmt = (
        visible_bookings(caller)
        .outerjoin(RegulatorAccount, RegulatorAccount.id == Booking.operator_account_id)
        .add_columns(RegulatorAccount, func.count().over().label("total"))
    )
    for prefix, when in q.date_bounds:
        stmt = stmt.where(date_condition(Booking.start, prefix, when))
    if q.statuses:
        stmt = stmt.where(Booking.status.in_(q.statuses))
    if q.ids:
        stmt = stmt.where(Booking.id.in_(q.ids))
    if q.practitioner_ids:
        stmt = stmt.where(Booking.practitioner_id.in_(q.practitioner_ids))
    if q.slot_ids:
        stmt = stmt.where(Booking.slot_id.in_(q.slot_ids))
    stmt = stmt.order_by(Booking.start, Booking.id).limit(q.count).offset(q.offset)
    rows = (await session.execute(stmt)).all()
    resources = []
    for booking, practitioner, _practice, timezone, account, _total in rows:
        resources.append(appointment(booking, practitioner.rpps, account, timezone))
    total = rows[0].total if rows else 0
    if not rows and q.offset:
        total = await count_only(session, stmt)
    return resources, total


def bundle(
    resources: list[dict[str, Any]],
    total: int,
    q: AppointmentQuery,
    self_url: str,
    params: list[tuple[str, str]],
) -> dict[str, Any]:
    base = get_settings().public_base_url
    links = [{"relation": "self", "url": self_url}]
    if q.offset + len(resources) < total:
        following = [(k, v) for k, v in params if k != "_offset"]
        following.append(("_offset", str(q.offset + q.count)))
        links.append({"relation": "next", "url": f"{base}/fhir/Appointment?{urlencode(following)}"})
    result: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
    }
    if resources:
        result["entry"] = [
            {
                "fullUrl": f"{base}/fhir/Appointment/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ]
    return result
