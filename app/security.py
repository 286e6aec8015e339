"""API keys (SHA-256 digests at rest), client certificates of the SAS platform, roles and the
caller's scope."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import asyncpg
from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.client_certs import SubjectPattern, parse_name
from app.db import DriverStatement
from app.directory.models import ApiKey, Practice, regulator_territory
from app.errors import Forbidden, NotFound, Unauthorized

if TYPE_CHECKING:
    from app.caller_cache import CallerCache

log = logging.getLogger(__name__)

KEY_PREFIX: Final = "crn_"

ADMIN, COORDINATOR, PRACTICE, REGULATOR, DASHBOARD, SAS_PLATFORM = (
    "admin",
    "coordinator",
    "practice",
    "regulator",
    "dashboard",
    "sas_platform",
)


def new_secret() -> tuple[str, str, str]:
    """Return (key shown once, display prefix, digest stored)."""
    token = secrets.token_urlsafe(32)
    key = f"{KEY_PREFIX}{token}"
    return key, key[:12], digest(key)


def digest(key: str) -> str:
    # Keys carry 256 bits of entropy: a fast hash is safe and allows an indexed lookup.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Caller:
    key_id: uuid.UUID
    role: str
    territory_id: uuid.UUID | None = None
    practice_id: uuid.UUID | None = None
    regulator_id: uuid.UUID | None = None
    # Territories whose data the caller may read and write; meaningless for instance-wide
    # roles. For a regulator: the SAS's current links, intersected with the key's own
    # territory when it has one (`territory_id`, set on keys minted by a coordinator).
    territory_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def instance_wide(self) -> bool:
        return self.role in (ADMIN, SAS_PLATFORM)

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise Forbidden(f"This operation needs one of the roles {', '.join(roles)}")

    def sees_territory(self, territory_id: uuid.UUID) -> bool:
        return self.instance_wide or territory_id in self.territory_ids

    def check_territory(self, territory_id: uuid.UUID, what: str = "Resource") -> None:
        """404 rather than 403: another territory's resources must not be revealed."""
        if not self.sees_territory(territory_id):
            raise NotFound(f"{what} not found")


# One round trip: the key, its practice's territory and its SAS's linked territories.
_KEY_LOOKUP = (
    select(
        ApiKey.id,
        ApiKey.role,
        ApiKey.digest,
        ApiKey.territory_id,
        ApiKey.practice_id,
        ApiKey.regulator_id,
        Practice.territory_id.label("practice_territory_id"),
        func.array(
            select(regulator_territory.c.territory_id)
            .where(regulator_territory.c.regulator_id == ApiKey.regulator_id)
            .scalar_subquery()
        ).label("linked_territory_ids"),
    )
    .outerjoin(Practice, Practice.id == ApiKey.practice_id)
    .where(ApiKey.digest == bindparam("digest"), ApiKey.revoked_at.is_(None))
)
_KEY_STATEMENT = DriverStatement(_KEY_LOOKUP)


async def caller_from_key(session: AsyncSession, key: ApiKey) -> Caller:
    """The caller of a known, unrevoked key (web sessions hold the key's id)."""
    row = await _KEY_STATEMENT.fetchrow(session, digest=key.digest)
    assert row is not None
    return _caller(row)


def _caller(row: asyncpg.Record) -> Caller:
    territory_id = row["territory_id"]
    if row["role"] == PRACTICE:
        territory_id = row["practice_territory_id"]
        territory_ids = frozenset([territory_id]) if territory_id else frozenset()
    elif row["role"] == REGULATOR:
        # The SAS's current links, narrowed to the key's own territory when it has one (a key
        # minted by a coordinator acts in that coordinator's territory only).
        territory_ids = frozenset(row["linked_territory_ids"] or ())
        if territory_id is not None:
            territory_ids &= {territory_id}
    else:
        territory_ids = frozenset([territory_id]) if territory_id else frozenset()
    return Caller(
        key_id=row["id"],
        role=row["role"],
        territory_id=territory_id,
        practice_id=row["practice_id"],
        regulator_id=row["regulator_id"],
        territory_ids=territory_ids,
    )


def certificate_caller(subject: str, allowed: Sequence[SubjectPattern]) -> Caller:
    """The SAS platform, from the subject of its verified client certificate (mutual TLS): a
    subject matching none of SAS_PLATFORM_SUBJECTS is a 403."""
    try:
        name = parse_name(subject)
    except ValueError as exc:
        log.warning("client certificate refused: unreadable subject")
        raise Forbidden("The client certificate's subject cannot be read") from exc
    for pattern in allowed:
        if pattern.matches(name):
            return Caller(key_id=pattern.identity, role=SAS_PLATFORM)
    log.warning("client certificate refused", extra={"subject": subject})
    raise Forbidden(
        "This client certificate's subject (CN, OU) is not one of the SAS platform's; "
        "send an API key instead"
    )


async def authenticate(
    session: AsyncSession,
    authorization: str | None,
    certificate: str | None = None,
    platform_subjects: Sequence[SubjectPattern] = (),
    cache: CallerCache | None = None,
) -> Caller:
    """A bearer API key; without one, the verified client certificate's subject (`certificate`,
    RFC 4514), which must be the SAS platform's; without either, a 401. A key whose caller is
    in `cache` costs no round trip."""
    if not authorization and certificate is not None:
        return certificate_caller(certificate, platform_subjects)
    if not authorization:
        raise Unauthorized("Missing Authorization header: send 'Authorization: Bearer <api key>'")
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("The Authorization header must be 'Bearer <api key>'")
    wanted = digest(key)
    if cache is not None:
        # Found by its digest, as the lookup finds its row: the digest of a secret is no secret.
        cached = cache.get(wanted)
        if cached is not None:
            return cached
        generation = cache.generation()
    row = await _KEY_STATEMENT.fetchrow(session, digest=wanted)
    # The digest lookup is by index; the constant-time comparison guards the final match.
    if row is None or not hmac.compare_digest(row["digest"], wanted):
        raise Unauthorized("Unknown or revoked API key")
    caller = _caller(row)
    if cache is not None:
        cache.put(wanted, caller, generation)
    return caller
