"""Appointment notifications to the national SAS platform (guide's FrAppointmentSAS): POST
once booked, then a conditional PUT on each change, through the outbox."""

from __future__ import annotations

import uuid
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.directory.models import Practitioner, RegulatorAccount, Territory
from app.directory.regulator_accounts import SAS_SYSTEM
from app.outbox.models import OutboxMessage
from app.sas_bridge.accounts import account_identifier
from app.sas_bridge.fhir_resources import ID_TYPE_SYSTEM, rpps_identifier
from app.sas_bridge.fhir_resources import PROFILE as PROFILES
from app.scheduling.booking_models import Booking

OPERATOR_EXTENSION = "http://interopsante.org/fhir/StructureDefinition/FrAppointmentOperator"
# Booking status → Appointment status; a hold is not an appointment yet.
STATUS = {"booked": "booked", "cancelled": "cancelled", "honored": "fulfilled",
          "no_show": "noshow"}  # fmt: skip


def operator_extension(account: RegulatorAccount) -> dict[str, Any]:
    system, value = account_identifier(account)
    code = "INTRN" if system == SAS_SYSTEM else "IDNPS"
    return {
        "url": OPERATOR_EXTENSION,
        "valueReference": {
            "identifier": {
                "type": {"coding": [{"system": ID_TYPE_SYSTEM, "code": code}]},
                "system": system,
                "value": value,
            }
        },
    }


def appointment(
    booking: Booking, account: RegulatorAccount, rpps: str, timezone: str
) -> dict[str, Any]:
    """The guide's FrAppointmentSAS, as sent to the platform; times in the territory's zone
    with its offset, as every other output."""
    settings = get_settings()
    tz = ZoneInfo(timezone)
    return {
        "resourceType": "Appointment",
        "meta": {"profile": [PROFILES["Appointment"]]},
        "extension": [operator_extension(account)],
        "identifier": [{"system": settings.appointment_system, "value": str(booking.id)}],
        "status": STATUS[booking.status],
        "start": booking.start.astimezone(tz).isoformat(timespec="seconds"),
        "end": booking.end.astimezone(tz).isoformat(timespec="seconds"),
        "created": (booking.booked_at or booking.created_at)
        .astimezone(tz)
        .isoformat(timespec="seconds"),
        "participant": [{"actor": {"identifier": rpps_identifier(rpps)}, "status": "accepted"}],
    }


async def notify(session: AsyncSession, booking: Booking) -> bool:
    """Queue the platform's notification for this booking's new status, if the booking has
    an operator and a platform is configured. Returns whether one was queued."""
    if get_settings().sas_platform_url is None or booking.operator_account_id is None:
        return False
    if booking.status not in STATUS:
        return False
    account = await session.get(RegulatorAccount, booking.operator_account_id)
    found = (
        await session.execute(
            select(Practitioner.rpps, Territory.timezone)
            .join(Territory, Territory.id == Practitioner.territory_id)
            .where(Practitioner.id == booking.practitioner_id)
        )
    ).one_or_none()
    assert account is not None and found is not None
    rpps, timezone = found
    method = "POST" if booking.status == "booked" else "PUT"
    posted = await session.scalar(
        select(OutboxMessage.id)
        .where(OutboxMessage.kind == "sas_appointment", OutboxMessage.ordering_key == booking.id)
        .limit(1)
    )
    if (method == "POST") == (posted is not None):
        # A PUT needs its POST before it (a cancelled hold was never an appointment), and a
        # booking is created on the platform once.
        return False
    await session.execute(
        insert(OutboxMessage).values(
            kind="sas_appointment",
            ordering_key=booking.id,
            territory_id=booking.territory_id,
            event_id=uuid.uuid4(),
            event_type=f"appointment.{STATUS[booking.status]}",
            payload={"method": method, "resource": appointment(booking, account, rpps, timezone)},
        )
    )
    return True
