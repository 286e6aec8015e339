"""Who calls and what they may see: roles, the caller's scope, API key secrets (SHA-256
digests at rest) and the SAS platform's client certificates. A key's caller is looked up in
app.directory.callers."""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from app.client_certs import SubjectPattern, parse_name
from app.errors import Forbidden, NotFound

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
