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

from sqlalchemy import ColumnElement, and_, func, or_
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import now_utc
from app.config import get_settings
from app.directory.models import RegulatorAccount
from app.errors import BadRequest
from app.sas_bridge import fhir_resources as res
from app.sas_bridge.appointments import STATUS, operator_extension
from app.sas_bridge.fhir_params import (
    DEFAULT_COUNT,
    MAX_COUNT,
    count_only,
    date_condition,
    paging_number,
    parse_date,
)
from app.sas_bridge.fhir_searchset import paged_searchset
from app.scheduling.booking_models import Booking
from app.scheduling.booking_views import visible_bookings
from app.scheduling.rules import zone
from app.security import Caller

# A live hold is not an appointment yet: FHIR's `pending`. A hold that expired (recorded by
# the expiry job, or lapsed and not yet recorded) never became one: a pending Appointment that
# will not take place is `cancelled` in FHIR's workflow (`entered-in-error` would say it never
# existed, and leaving it out would leave a client that saw it pending believing it still is).
READ_STATUS = {**STATUS, "held": "pending", "expired": "cancelled"}
EXPIRED_REASON = "The hold expired before it was confirmed"
FHIR_STATUSES = tuple(dict.fromkeys(READ_STATUS.values()))


def read_status(booking: Booking, now: datetime) -> str:
    expiry = booking.hold_expires_at
    if booking.status == "held" and expiry is not None and expiry <= now:
        return "cancelled"
    return READ_STATUS[booking.status]


def status_condition(codes: list[str], now: datetime) -> ColumnElement[bool]:
    """Bookings whose FHIR status (as `read_status` gives it) is one of `codes`."""
    live_hold = and_(Booking.status == "held", Booking.hold_expires_at > now)
    lapsed_hold = and_(Booking.status == "held", Booking.hold_expires_at <= now)
    ours = [s for s, fhir in READ_STATUS.items() if fhir in codes and s != "held"]
    conditions: list[ColumnElement[bool]] = [Booking.status.in_(ours)]
    if "pending" in codes:
        conditions.append(live_hold)
    if "cancelled" in codes:
        conditions.append(lapsed_hold)
    return or_(*conditions)


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
                if code not in FHIR_STATUSES:
                    raise BadRequest(f"status: {code!r} is not one of {', '.join(FHIR_STATUSES)}")
                q.statuses.append(code)
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
    booking: Booking, rpps: str, account: RegulatorAccount | None, timezone: str, now: datetime
) -> dict[str, Any]:
    """Times in the territory's offset, like every answer of the service."""
    status = read_status(booking, now)
    tz = zone(timezone)
    settings = get_settings()
    body: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": str(booking.id),
        "identifier": [{"system": settings.appointment_system, "value": str(booking.id)}],
        "status": status,
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
    elif status == "cancelled":
        body["cancelationReason"] = {"text": EXPIRED_REASON}
    if account is not None:
        body["meta"] = {"profile": [res.PROFILE["Appointment"]]}
        body["extension"] = [operator_extension(account)]
    return body


async def search(
    session: AsyncSession, caller: Caller, q: AppointmentQuery, now: datetime | None = None
) -> tuple[list[dict[str, Any]], int]:
    """One statement: the visible bookings with practitioner, practice, zone and operator."""
    now = now or now_utc()
    stmt = (
        visible_bookings(caller)
        .outerjoin(RegulatorAccount, RegulatorAccount.id == Booking.operator_account_id)
        .add_columns(RegulatorAccount, func.count().over().label("total"))
    )
    for prefix, when in q.date_bounds:
        stmt = stmt.where(date_condition(Booking.start, prefix, when))
    if q.statuses:
        stmt = stmt.where(status_condition(q.statuses, now))
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
        resources.append(appointment(booking, practitioner.rpps, account, timezone, now))
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
    return paged_searchset(
        "Appointment", resources, total=total, offset=q.offset, count=q.count,
        self_url=self_url, params=params, base=get_settings().public_base_url,
    )  # fmt: skip
