"""A key's caller: one round trip for the key, its practice's territory and its SAS's linked
territories, remembered by the caller cache; without a key, the SAS platform's certificate."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

import asyncpg
from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.caller_cache import CallerCache
from app.client_certs import SubjectPattern
from app.db import DriverStatement
from app.directory.models import ApiKey, Practice, regulator_territory
from app.errors import Unauthorized
from app.security import PRACTICE, REGULATOR, Caller, certificate_caller, digest

# One round trip: the key, its practice's territory and its SAS's linked territories.
KEY_LOOKUP = (
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
KEY_STATEMENT = DriverStatement(KEY_LOOKUP)


async def caller_from_key(session: AsyncSession, key: ApiKey) -> Caller:
    """The caller of a known, unrevoked key (web sessions hold the key's id)."""
    row = await KEY_STATEMENT.fetchrow(session, digest=key.digest)
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
    row = await KEY_STATEMENT.fetchrow(session, digest=wanted)
    # The digest lookup is by index; the constant-time comparison guards the final match.
    if row is None or not hmac.compare_digest(row["digest"], wanted):
        raise Unauthorized("Unknown or revoked API key")
    caller = _caller(row)
    if cache is not None:
        cache.put(wanted, caller, generation)
    return caller
