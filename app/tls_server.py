"""Inbound TLS for `creneau serve` (docs/sas-mtls.md).

uvicorn terminates TLS but does not tell the application who the client is. This module gives
it two small pieces:

- `ssl_context_factory`: the server's context from the settings, TLS 1.2 or later, asking for
  a client certificate verified against TLS_CLIENT_CA (optional or required);
- `ClientCertProtocol`: uvicorn's HTTP protocol with one change, made when a connection opens:
  every request of the connection carries the ASGI TLS extension (`scope["extensions"]["tls"]`)
  with the verified client certificate and its RFC 4514 subject, read from the connection's
  `ssl_object`; or, when the TCP peer is one of TRUSTED_PROXIES, the subject that proxy
  verified (`X-SSL-Client-S-DN`, when `X-SSL-Client-Verify` is `SUCCESS`, as nginx sets them).

Those two headers are removed from every request before the application sees it, whoever sent
them: only this module reads them, and only from a trusted proxy. The peer is the connection's,
read before uvicorn applies X-Forwarded-For. `app.client_certs.verified_subject` reads the
extension; `app.security` decides what the subject may do.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
from collections.abc import Callable, Sequence
from typing import Any

from cryptography import x509
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings, get_settings

log = logging.getLogger(__name__)

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}

TlsExtension = dict[str, Any]


def server_ssl_context(settings: Settings) -> ssl.SSLContext:
    assert settings.tls_cert is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    if settings.tls_client_ca is not None:
        context.load_verify_locations(cafile=settings.tls_client_ca)
        required = settings.tls_client_cert == "required"
        context.verify_mode = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
    return context


def ssl_context_factory(config: Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's `ssl_context_factory`. Module-level, so that it is pickled by reference when
    uvicorn starts several worker processes."""
    return server_ssl_context(get_settings())


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What `creneau serve` passes to uvicorn besides the app, host, port and workers."""
    # Forwarded headers (X-Forwarded-For, -Proto) are believed from TRUSTED_PROXIES only:
    # uvicorn's own default would believe them from 127.0.0.1 (or FORWARDED_ALLOW_IPS), so that
    # anything on the host could choose its client address (sign-in slow-down, link limiter).
    trusted = [str(network) for network in settings.trusted_proxies]
    options: dict[str, Any] = {
        "http": ClientCertProtocol,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted,
    }
    if settings.tls_cert is not None:
        options["ssl_context_factory"] = ssl_context_factory
    return options


def _extension(
    name: str | None, chain: Sequence[str] = (), tls_version: int | None = None
) -> TlsExtension:
    # cipher_suite: Python's ssl module does not give the IANA number; the spec allows None.
    return {
        "server_cert": None,
        "client_cert_chain": list(chain),
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": tls_version,
        "cipher_suite": None,
    }


def connection_extension(ssl_object: ssl.SSLObject) -> TlsExtension:
    """The TLS extension of a connection Créneau terminated itself. A certificate reaching here
    was verified during the handshake (one that fails verification ends the handshake)."""
    version = _TLS_VERSIONS.get(ssl_object.version() or "")
    der = ssl_object.getpeercert(binary_form=True)
    if not der or ssl_object.context.verify_mode == ssl.CERT_NONE:
        return _extension(None, tls_version=version)
    subject = x509.load_der_x509_certificate(der).subject.rfc4514_string()
    return _extension(subject, [ssl.DER_cert_to_PEM_cert(der)], version)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _trusted(host: str | None, networks: Sequence[Network]) -> bool:
    if host is None or not networks:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


class ClientIdentity:
    """Per connection: puts the client certificate into each request's scope and removes the
    proxy's certificate headers."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        connection: TlsExtension | None,
        from_proxy: bool,
        peer: str | None,
        subject_header: str,
        verify_header: str,
    ) -> None:
        self.app = app
        self.connection = connection
        self.from_proxy = from_proxy
        self.peer = peer
        self.subject_header = subject_header.lower().encode("latin-1")
        self.verify_header = verify_header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = self._scope(scope)
        await self.app(scope, receive, send)

    def _scope(self, scope: Scope) -> Scope:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        names = (self.subject_header, self.verify_header)
        sent = [(k, v) for k, v in headers if k in names]
        if sent:
            headers = [(k, v) for k, v in headers if k not in names]
        tls = self.connection
        if self.from_proxy:
            tls = self._from_proxy(sent)
        elif sent:
            log.warning(
                "client certificate headers ignored: not from a trusted proxy",
                extra={"peer": self.peer},
            )
        if not sent and tls is None:
            return scope
        extensions = dict(scope.get("extensions") or {})
        if tls is not None:
            extensions["tls"] = dict(tls)
        return {**scope, "headers": headers, "extensions": extensions}

    def _from_proxy(self, sent: list[tuple[bytes, bytes]]) -> TlsExtension | None:
        subjects = [v for k, v in sent if k == self.subject_header]
        verdicts = [v for k, v in sent if k == self.verify_header]
        if verdicts != [b"SUCCESS"]:
            return None
        if len(subjects) != 1 or not subjects[0].strip():
            log.warning("client certificate headers ignored: no single subject")
            return None
        return _extension(subjects[0].decode("latin-1"))


class ClientCertProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol whose requests carry the client's certificate."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        settings = get_settings()
        peer = self.client[0] if self.client else None
        from_proxy = _trusted(peer, settings.trusted_proxies)
        ssl_object = transport.get_extra_info("ssl_object")
        connection = None
        if ssl_object is not None and not from_proxy:
            connection = connection_extension(ssl_object)
        self.app = ClientIdentity(
            self.config.loaded_app,
            connection=connection,
            from_proxy=from_proxy,
            peer=peer,
            subject_header=settings.tls_proxy_subject_header,
            verify_header=settings.tls_proxy_verify_header,
        )
