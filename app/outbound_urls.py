"""The one guard of every outbound request built from a client's input (webhooks, agenda feeds):
https to public addresses only, unless the instance allows plain http and private addresses
(`*_ALLOW_INSECURE_URLS`: tests, closed networks).

- At registration, `check_registered_url` refuses what is private by its very form: `localhost`
  (with or without its trailing dot), `.local`/`.internal` names, and every address literal that
  is not global, whatever its notation (decimal `2130706433`, hex `0x7f000001`, octal `0177.0.0.1`,
  short `127.1`, IPv4-mapped `::ffff:127.0.0.1`, IPv4-compatible `::127.0.0.1`, NAT64
  `64:ff9b::7f00:1`, 6to4 `2002:7f00:1::`). `check_resolved_url` also resolves the name.
- At connection time, `GuardedBackend` (the network backend of `guarded_transport`) resolves the
  host once, refuses the connection unless every address is public, and connects to the address it
  checked: no second resolution for a DNS answer to change in between (rebinding). TLS still
  verifies the certificate against, and sends SNI for, the URL's host name. Each redirect hop opens
  its own connection, so each is checked.
- A refused or failed connection is reported as `COULD_NOT_CONNECT`, the same words whatever the
  cause, so that recorded errors do not tell what listens where.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing
from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

import httpcore
import httpx

from app.errors import ValidationFailed

COULD_NOT_CONNECT: Final = "could not connect"

_PRIVATE_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".lan")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundRefused(Exception):
    """The host resolves to (or is) an address the service must not connect to."""


def is_public(address: Address) -> bool:
    """Whether the service may connect to `address`: globally routable, and for IPv6 forms
    that embed an IPv4 address (mapped, compatible, NAT64, 6to4), the embedded one too."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address in _IPV4_COMPATIBLE or address in _NAT64_LOCAL:
            return False
        if address in _NAT64:
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None:
            return is_public(address.sixtofour)
        if address.teredo is not None:
            return False
    return bool(
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_link_local
        and not address.is_loopback
        and not address.is_unspecified
    )


def address_literal(host: str) -> Address | None:
    """The address a host written as an address literal means, in any notation the system's
    resolver accepts (`inet_aton`: decimal, hex, octal, short forms); None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _private_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return not name or name in _PRIVATE_NAMES or name.endswith(_PRIVATE_SUFFIXES)


def check_registered_url(url: str, loc: list[str | int], *, allow_insecure: bool) -> None:
    """422 on `loc` when the URL, by its form alone, is not one the service may call."""
    if allow_insecure:
        return
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise ValidationFailed.field(loc, "must be an https:// URL")
    host = parts.hostname or ""
    literal = address_literal(host)
    if literal is None:
        if _private_name(host):
            raise ValidationFailed.field(loc, "must be a public host")
        return
    if not is_public(literal):
        raise ValidationFailed.field(loc, "must be a public address")


async def check_resolved_url(url: str, loc: list[str | int], *, allow_insecure: bool) -> None:
    """`check_registered_url`, and a name that resolves now must resolve to public addresses
    only (a name that does not resolve yet is checked again at each connection)."""
    check_registered_url(url, loc, allow_insecure=allow_insecure)
    if allow_insecure:
        return
    parts = urlsplit(url)
    try:
        await public_addresses(parts.hostname or "", parts.port or 443)
    except OutboundRefused:
        raise ValidationFailed.field(loc, "must be a public host") from None
    except OSError:
        return


async def resolve(host: str, port: int) -> list[Address]:
    """The addresses `host` resolves to (one DNS query; the hook tests replace)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM
    )
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


async def public_addresses(host: str, port: int) -> list[Address]:
    """The host's addresses, all public, or OutboundRefused; OSError when it does not resolve."""
    if _private_name(host):
        raise OutboundRefused(host)
    addresses = await resolve(host, port)
    if not addresses or not all(is_public(a) for a in addresses):
        raise OutboundRefused(host)
    return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves once, checks, and connects to the checked address (see the module's doc)."""

    def __init__(self, allow_private: Callable[[], bool]) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: typing.Any = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                if self._allow_private():
                    addresses = await resolve(host, port)
                else:
                    addresses = await public_addresses(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(COULD_NOT_CONNECT) from None
        except (OutboundRefused, OSError, UnicodeError, ValueError):
            raise httpcore.ConnectError(COULD_NOT_CONNECT) from None
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout, OSError) as exc:
                last = exc
        raise httpcore.ConnectError(COULD_NOT_CONNECT) from last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: typing.Any = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError(COULD_NOT_CONNECT)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(
    allow_private: Callable[[], bool], **options: typing.Any
) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every connection goes through `GuardedBackend`; never through
    a proxy from the environment (it would connect in the guard's stead)."""
    transport = httpx.AsyncHTTPTransport(trust_env=False, **options)
    pool = transport._pool
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    # httpx does not take a network backend; its pool (httpcore's) does, read at each new
    # connection.
    pool._network_backend = GuardedBackend(allow_private)
    return transport


def guarded_client(allow_private: Callable[[], bool], **options: typing.Any) -> httpx.AsyncClient:
    """An httpx client for requests built from clients' input (see `guarded_transport`)."""
    return httpx.AsyncClient(transport=guarded_transport(allow_private), trust_env=False, **options)
