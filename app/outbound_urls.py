"""Which URLs the service may call on a client's behalf (webhooks, agenda feeds): https to a
public host, unless the instance allows plain http and private addresses (tests, closed
networks). Checked when the URL is registered and again, on the resolved addresses, before
each fetch, so that a client cannot make the service probe its own network."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from app.errors import ValidationFailed

_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal")


def check_registered_url(url: str, loc: list[str | int], *, allow_insecure: bool) -> None:
    """422 on `loc` when the URL is not one the service may call."""
    if allow_insecure:
        return
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise ValidationFailed.field(loc, "must be an https:// URL")
    host = parts.hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith(_PRIVATE_SUFFIXES):
            raise ValidationFailed.field(loc, "must be a public host") from None
        return
    if not address.is_global:
        raise ValidationFailed.field(loc, "must be a public address")


async def resolves_to_public_addresses(url: str) -> bool:
    """Whether every address the URL's host resolves to is public (DNS answers can change
    after registration)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or 443, type=socket.SOCK_STREAM
        )
    except OSError:
        return False
    addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
    return bool(addresses) and all(a.is_global for a in addresses)
