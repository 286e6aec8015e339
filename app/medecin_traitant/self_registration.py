"""Patients who put themselves in the médecin traitant queue (the public page
/medecin-traitant/{territory_id}), the status they may check with their reference and birth
date, and the coordinator's confirmation of the criteria they declared.

A second registration of the same patient (same INS, or same name, birth date and phone) is
merged into the open request: never a second place in the queue, and the same answer as a first
one (the request's reference), so the page tells no one whether a patient was already there.
Declared criteria (ALD, precarity) count for priority only once the coordinator confirms them;
until then only the age (from the birth date) does. Services flush, never commit."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from pydantic import Field
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import now_utc
from app.config import get_settings
from app.directory.models import Territory
from app.errors import Conflict, NotFound, ServiceUnavailable
from app.medecin_traitant import schemas, service
from app.medecin_traitant.models import MtRequest
from app.patient_data import PatientIn, patient_columns
from app.security import ADMIN, COORDINATOR, Caller
from app.validators import StrictModel

EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,63}$"
# No 0/O, 1/I/L: a reference read out on the phone is not misheard.
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


class SelfRegistrationIn(StrictModel):
    patient: PatientIn
    contact_email: str | None = Field(default=None, max_length=320, pattern=EMAIL_PATTERN)
    ald: bool = False
    precarity: bool = False
    preferences: schemas.Preferences | None = None


class DailyCapReached(ServiceUnavailable):
    """The territory took its day's online registrations."""


def new_reference() -> str:
    chars = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"{chars[:5]}-{chars[5:]}"


def normalise_reference(text: str) -> str | None:
    chars = re.sub(r"[^A-Z0-9]", "", text.upper())
    if len(chars) != 10 or any(c not in _ALPHABET for c in chars):
        return None
    return f"{chars[:5]}-{chars[5:]}"


async def public_territory(session: AsyncSession, territory_id: uuid.UUID) -> Territory:
    territory = await session.get(Territory, territory_id)
    if territory is None:
        raise NotFound("Territory not found")
    return territory


async def territories(session: AsyncSession) -> list[Territory]:
    """The territories a patient may choose from (names only are shown)."""
    return list((await session.scalars(select(Territory).order_by(Territory.name))).all())


async def _today_count(session: AsyncSession, territory: Territory) -> int:
    zone = ZoneInfo(territory.timezone)
    local_now = now_utc().astimezone(zone)
    midnight = datetime.combine(local_now.date(), time(0), tzinfo=zone)
    return (
        await session.scalar(
            select(func.count()).where(
                MtRequest.territory_id == territory.id,
                MtRequest.source == "self",
                MtRequest.registered_at >= midnight,
            )
        )
        or 0
    )


def _same_patient(territory_id: uuid.UUID, patient: PatientIn) -> Select[MtRequest]:
    return select(MtRequest).where(*service.same_patient(territory_id, patient))


async def _merge(session: AsyncSession, existing: MtRequest, data: SelfRegistrationIn) -> str:
    """The same patient again: nothing of the queue changes (neither place nor criteria); a
    missing reference or e-mail is filled in."""
    if existing.reference is None:
        existing.reference = new_reference()
    if existing.contact_email is None and data.contact_email:
        existing.contact_email = data.contact_email
    await session.flush()
    await service.event(session, None, "mt.self_registration_merged", existing)
    return existing.reference


async def register_self(
    session: AsyncSession, territory: Territory, data: SelfRegistrationIn
) -> str:
    """The patient's request in the territory's queue (or the one already there): its
    reference. DailyCapReached once the territory's online registrations of the day are in."""
    settings = get_settings()
    if await _today_count(session, territory) >= settings.mt_public_daily_cap:
        raise DailyCapReached("Online registrations are closed for today in this territory")
    patient = data.patient
    existing = await session.scalar(_same_patient(territory.id, patient).with_for_update().limit(1))
    if existing is not None:
        return await _merge(session, existing, data)
    prefs = data.preferences or schemas.Preferences()
    now = now_utc()
    request = MtRequest(
        territory_id=territory.id,
        status="waiting",
        source="self",
        ald=data.ald,
        precarity=data.precarity,
        criteria_to_check=data.ald or data.precarity,
        registered_at=now,
        created_by_key_id=None,
        preferred_communes=prefs.communes_insee or [],
        preferred_gender=prefs.practitioner_gender,
        reference=new_reference(),
        contact_email=data.contact_email,
        consent_at=now,
        **patient_columns(patient),
    )
    try:
        async with session.begin_nested():
            session.add(request)
            await session.flush()
    except IntegrityError:  # the same patient registered at the same moment
        existing = await session.scalar(_same_patient(territory.id, patient).limit(1))
        if existing is None:
            raise
        return await _merge(session, existing, data)
    await service.event(session, None, "mt.registered", request)
    assert request.reference is not None
    return request.reference


async def status_of(session: AsyncSession, reference: str, birth_date: date) -> str | None:
    """Where the patient stands, and nothing else; None for no such reference and birth
    date (or a request whose patient data the retention job has erased)."""
    ref = normalise_reference(reference)
    if ref is None:
        return None
    return await session.scalar(
        select(MtRequest.status).where(
            MtRequest.reference == ref, MtRequest.patient_birth_date == birth_date
        )
    )


class CriteriaIn(StrictModel):
    ald: bool
    precarity: bool


async def confirm_criteria(
    session: AsyncSession, caller: Caller, request_id: uuid.UUID, data: CriteriaIn
) -> service.MtView:
    """The coordinator checked the declared criteria (and may correct them): from now on
    they count for priority."""
    caller.require(COORDINATOR, ADMIN)
    view = await service.get(session, caller, request_id, lock=True)
    r = view.request
    if not r.criteria_to_check:
        raise Conflict("The criteria of this request are already confirmed")
    r.ald, r.precarity, r.criteria_to_check = data.ald, data.precarity, False
    await session.flush()
    await service.event(session, caller, "mt.criteria_confirmed", r)
    return view


def retention_days() -> int:
    return get_settings().mt_request_retention_days
