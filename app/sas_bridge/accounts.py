"""Regulator accounts pushed by the national SAS platform (FHIR Practitioner, guide's
"FrPractitionerRegul"): idempotent create-or-update, deactivation, the operator of bookings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from fhir.resources.R4B.practitioner import Practitioner as FhirPractitioner
from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.service import record
from app.clock import now_utc
from app.directory.models import RegulatorAccount
from app.directory.regulator_accounts import RPPS_SYSTEM, SAS_SYSTEM
from app.errors import AppError, BadRequest
from app.sas_bridge.account_sign_in import end_sessions
from app.sas_bridge.fhir_resources import ID_TYPE_SYSTEM
from app.security import Caller

REGULATOR_PROFILE = (
    "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/FrPractitionerRegul"
)
SYSTEM_TYPE = {RPPS_SYSTEM: "IDNPS", SAS_SYSTEM: "INTRN"}


class BusinessRuleViolation(AppError):
    """422 under /fhir: well-formed FHIR that breaks one of the guide's rules."""

    status, slug, title = 422, "business-rule", "Business rule violated"


class PreconditionFailed(AppError):
    """412: a conditional update whose criteria match more than one resource."""

    status, slug, title = 412, "precondition-failed", "Precondition failed"


@dataclass(frozen=True)
class Criteria:
    """A conditional update's `identifier=[system|]value`: no system matches either."""

    system: str | None
    value: str


@dataclass(frozen=True)
class AccountData:
    national_id: str | None
    technical_id: str | None
    family_name: str
    given_name: str | None
    email: str | None
    active: bool


def parse_practitioner(body: Any, *, identifier_required: bool = True) -> AccountData:
    """400 for malformed FHIR, 422 for a rule of the guide. A conditional update's body may
    leave its identifier to the URL (`identifier_required=False`)."""
    if not isinstance(body, dict) or body.get("resourceType") != "Practitioner":
        raise BadRequest("The body must be a FHIR Practitioner resource")
    try:
        FhirPractitioner.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadRequest(f"Malformed Practitioner at {where}: {first['msg']}") from exc
    source = (body.get("meta") or {}).get("source")
    if source != SAS_SYSTEM:
        raise BusinessRuleViolation(f"meta.source must be {SAS_SYSTEM}")
    national = technical = None
    for ident in body.get("identifier") or []:
        system, value = ident.get("system"), ident.get("value")
        if system not in SYSTEM_TYPE or not value:
            continue
        codes = {c.get("code") for c in (ident.get("type") or {}).get("coding") or []}
        if codes and SYSTEM_TYPE[system] not in codes:
            raise BusinessRuleViolation(
                f"identifier {system} must have type {SYSTEM_TYPE[system]} ({ID_TYPE_SYSTEM})"
            )
        if system == RPPS_SYSTEM:
            national = value
        else:
            try:
                technical = str(uuid.UUID(value))
            except ValueError as exc:
                raise BusinessRuleViolation("the SAS technical identifier must be a UUID") from exc
    if national is None and technical is None and identifier_required:
        raise BusinessRuleViolation(
            f"an identifier is required: national ({RPPS_SYSTEM}, IDNPS) or SAS ({SAS_SYSTEM}, "
            "INTRN)"
        )
    names = body.get("name") or []
    family = names[0].get("family") if names else None
    if not family:
        raise BusinessRuleViolation("name.family is required")
    given = (names[0].get("given") or [None])[0]
    email = next(
        (t.get("value") for t in body.get("telecom") or [] if t.get("system") == "email"), None
    )
    return AccountData(national, technical, family, given, email, bool(body.get("active", True)))


def parse_identifier(param: str | None) -> Criteria:
    """`identifier=<system>|<value>` or `identifier=<value>` (any system)."""
    if not param:
        raise BadRequest("identifier must be <system>|<value> or <value>")
    system, bar, value = param.partition("|")
    if not bar:
        system, value = "", param
    if bar and system not in SYSTEM_TYPE:
        raise BadRequest(f"identifier system must be {RPPS_SYSTEM} or {SAS_SYSTEM}")
    if not value:
        raise BadRequest("identifier needs a value")
    if system == SAS_SYSTEM:
        try:
            value = str(uuid.UUID(value))
        except ValueError as exc:
            raise BadRequest("the SAS technical identifier is a UUID") from exc
    return Criteria(system or None, value)


def _with_url_identifier(data: AccountData, criteria: Criteria) -> AccountData:
    """The body as the URL's criteria decide it: its identifier of the URL's system must be
    the URL's (else 400); a body without one takes the URL's."""
    system, value = criteria.system, criteria.value
    if system is None:
        if value not in (data.national_id, data.technical_id):
            raise BadRequest(f"the body carries no identifier {value!r}, which the URL names")
        return data
    mine = data.national_id if system == RPPS_SYSTEM else data.technical_id
    if mine is not None and mine != value:
        raise BadRequest(f"the body's identifier {system}|{mine} contradicts the URL's {value!r}")
    if system == RPPS_SYSTEM:
        return replace(data, national_id=value)
    return replace(data, technical_id=value)


async def conditional_update(
    session: AsyncSession, caller: Caller, data: AccountData, criteria: Criteria
) -> tuple[RegulatorAccount, bool]:
    """FHIR conditional update: the URL's criteria alone choose the account. No match creates
    one with the URL's identifier, one match updates it, several are a 412."""
    caller.require("sas_platform", "admin")
    data = _with_url_identifier(data, criteria)
    conditions = []
    if criteria.system in (None, RPPS_SYSTEM):
        conditions.append(RegulatorAccount.national_id == criteria.value)
    if criteria.system in (None, SAS_SYSTEM):
        conditions.append(RegulatorAccount.technical_id == criteria.value)
    matches = (
        await session.scalars(
            select(RegulatorAccount).where(or_(*conditions)).limit(2).with_for_update()
        )
    ).all()
    if len(matches) > 1:
        raise PreconditionFailed(f"identifier {criteria.value!r} matches several accounts")
    return await _save(session, caller, data, matches[0] if matches else None)


async def find(
    session: AsyncSession, national: str | None, technical: str | None
) -> RegulatorAccount | None:
    conditions = []
    if national:
        conditions.append(RegulatorAccount.national_id == national)
    if technical:
        conditions.append(RegulatorAccount.technical_id == technical)
    if not conditions:
        return None
    # The technical id wins: an account that gains a national id keeps its history.
    rows = (
        await session.scalars(select(RegulatorAccount).where(or_(*conditions)).with_for_update())
    ).all()
    if len(rows) > 1:
        rows = sorted(rows, key=lambda a: a.technical_id != technical)
    return rows[0] if rows else None


async def upsert(
    session: AsyncSession,
    caller: Caller,
    data: AccountData,
) -> tuple[RegulatorAccount, bool]:
    """Create, or update the account the body's identifiers name (POST); returns (account,
    created). Replaying the same body changes nothing."""
    caller.require("sas_platform", "admin")
    return await _save(
        session, caller, data, await find(session, data.national_id, data.technical_id)
    )


async def _save(
    session: AsyncSession, caller: Caller, data: AccountData, account: RegulatorAccount | None
) -> tuple[RegulatorAccount, bool]:
    national, technical = data.national_id, data.technical_id
    created = account is None
    if account is None:
        account = RegulatorAccount(created_at=now_utc())
        session.add(account)
    was_active = account.active if not created else None
    if national:
        account.national_id = national
    if technical:
        account.technical_id = technical
    account.family_name, account.given_name = data.family_name, data.given_name
    account.email, account.active = data.email, data.active
    if not data.active and was_active is not False:
        account.deactivated_at = now_utc()
        if not created:  # its booking-page sessions end with its right to book
            await end_sessions(session, account.id, account.deactivated_at)
    elif data.active:
        account.deactivated_at = None
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:  # a national id already held by another account
        raise BusinessRuleViolation(
            "this identifier already belongs to another regulator account"
        ) from exc
    event = "regulator_account.created" if created else "regulator_account.updated"
    if was_active and not data.active:
        event = "regulator_account.deactivated"
    await record(
        session, event, territory_id=None, subject_id=account.id, actor_key_id=caller.key_id
    )
    return account, created


def account_identifier(account: RegulatorAccount) -> tuple[str, str]:
    if account.national_id:
        return RPPS_SYSTEM, account.national_id
    assert account.technical_id is not None
    return SAS_SYSTEM, account.technical_id


def as_fhir(account: RegulatorAccount) -> dict[str, Any]:
    identifiers = []
    if account.national_id:
        identifiers.append(
            {"type": {"coding": [{"system": ID_TYPE_SYSTEM, "code": "IDNPS"}]},
             "system": RPPS_SYSTEM, "value": account.national_id}
        )  # fmt: skip
    if account.technical_id:
        identifiers.append(
            {"type": {"coding": [{"system": ID_TYPE_SYSTEM, "code": "INTRN"}]},
             "system": SAS_SYSTEM, "value": account.technical_id}
        )  # fmt: skip
    name: dict[str, Any] = {"family": account.family_name}
    if account.given_name:
        name["given"] = [account.given_name]
    meta: dict[str, Any] = {"source": SAS_SYSTEM}
    if account.given_name:  # FrPractitionerRegul needs name.given: claimed only when met
        meta["profile"] = [REGULATOR_PROFILE]
    resource: dict[str, Any] = {
        "resourceType": "Practitioner",
        "id": str(account.id),
        "meta": meta,
        "identifier": identifiers,
        "active": account.active,
        "name": [name],
    }
    if account.email:
        resource["telecom"] = [{"system": "email", "value": account.email}]
    return resource
