"""Client certificates: which subjects are the national SAS platform, and the verified subject
of a request.

A request's verified subject is read from the ASGI TLS extension (`scope["extensions"]["tls"]`,
https://asgi.readthedocs.io/en/latest/specs/tls.html), which `app.tls_server` fills in under
`creneau serve`, from the connection's certificate or from a trusted reverse proxy. Without it
(another server, the in-process test client) no request carries a certificate.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

# UUID v5 namespace of certificate identities: a SAS platform let in by its certificate gets
# the id uuid5(CERT_NAMESPACE, <its allowed subject>), stable across certificate renewals, used
# where an API key's id is (rate limiting, the activity and access logs, idempotency).
CERT_NAMESPACE = uuid.UUID("6f1c2a3e-5b0d-4c8e-9a51-3d2f7b8e4c10")


def parse_name(text: str) -> x509.Name:
    """A distinguished name in RFC 4514 form (nginx's `$ssl_client_s_dn` is RFC 2253, the same
    syntax); ValueError if it cannot be read."""
    return x509.Name.from_rfc4514_string(text.strip())


def _fold(value: str | bytes) -> str:
    # Directory strings compare case-insensitively with insignificant spaces collapsed.
    text = value if isinstance(value, str) else value.hex()
    return " ".join(text.split()).casefold()


def _attributes(name: x509.Name) -> frozenset[tuple[str, str]]:
    return frozenset((a.oid.dotted_string, _fold(a.value)) for a in name)


@dataclass(frozen=True)
class SubjectPattern:
    """An allowed subject, e.g. `CN=sas.sante.fr,OU=...`. A certificate matches when its
    subject has exactly one CN and holds every attribute the pattern names (at least the CN
    and an OU; more, such as O or C, narrow it further)."""

    text: str
    required: frozenset[tuple[str, str]]

    @classmethod
    def parse(cls, text: str) -> SubjectPattern:
        name = parse_name(text)
        if len(name.get_attributes_for_oid(NameOID.COMMON_NAME)) != 1:
            raise ValueError(f"{text!r} must name exactly one CN")
        if not name.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME):
            raise ValueError(f"{text!r} must name the OU")
        return cls(name.rfc4514_string(), _attributes(name))

    @property
    def identity(self) -> uuid.UUID:
        canonical = ",".join(f"{oid}={value}" for oid, value in sorted(self.required))
        return uuid.uuid5(CERT_NAMESPACE, canonical)

    def matches(self, subject: x509.Name) -> bool:
        if len(subject.get_attributes_for_oid(NameOID.COMMON_NAME)) != 1:
            return False
        return self.required <= _attributes(subject)


def verified_subject(scope: Mapping[str, Any]) -> str | None:
    """The RFC 4514 subject of the request's verified client certificate, if any."""
    tls = (scope.get("extensions") or {}).get("tls")
    if not tls or tls.get("client_cert_error"):
        return None
    name = tls.get("client_cert_name")
    return name if isinstance(name, str) and name else None
