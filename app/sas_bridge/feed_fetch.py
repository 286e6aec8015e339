"""Fetching an agenda feed over HTTP: timeouts, retries with backoff, conditional requests
(ETag / If-Modified-Since) and a size limit enforced while reading, never after."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

import httpx

from app.config import get_settings
from app.outbound_urls import COULD_NOT_CONNECT, guarded_client

RETRIED_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class FeedError(Exception):
    """A fetch or a feed that cannot be used; its message is shown to the practice."""


@dataclass
class Fetched:
    status: int  # 200, or 304 when the feed has not changed
    body: bytes = b""
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _insecure_allowed() -> bool:
    return get_settings().feed_allow_insecure_urls


async def _https_only(request: httpx.Request) -> None:
    """Every request, redirects included, is https (unless allowed); the transport checks
    each connection's address (app/outbound_urls.py)."""
    if not _insecure_allowed() and request.url.scheme != "https":
        raise FeedError("Feeds are fetched over https only")


def feed_client() -> httpx.AsyncClient:
    """The client of the import job: a few redirects, each checked like the first URL; each
    connection resolved once, checked public and made to the address checked."""
    return guarded_client(
        _insecure_allowed,
        follow_redirects=True,
        max_redirects=3,
        headers={"User-Agent": "Creneau agenda import"},
        event_hooks={"request": [_https_only]},
    )


async def _read_limited(response: httpx.Response, limit: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise FeedError(f"The feed is larger than {limit} bytes ({declared} announced)")
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise FeedError(f"The feed is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def fetch(
    http: httpx.AsyncClient,
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    limit: int | None = None,
    accept: str = "*/*",
) -> Fetched:
    """GET the feed, retrying network errors and 5xx/429 with exponential backoff and jitter."""
    settings = get_settings()
    headers = {"Accept": accept}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    limit = limit or settings.feed_max_bytes
    last_problem = "no attempt"
    for attempt in range(settings.feed_retries):
        if attempt:
            delay = settings.feed_retry_base_seconds * 2 ** (attempt - 1)
            await asyncio.sleep(delay * (0.5 + random.random()))
        try:
            async with http.stream(
                "GET", url, headers=headers, timeout=settings.feed_timeout_seconds
            ) as response:
                if response.status_code == 304:
                    return Fetched(304)
                if response.status_code in RETRIED_STATUSES:
                    last_problem = f"HTTP {response.status_code}"
                    continue
                if response.status_code != 200:
                    raise FeedError(f"The feed answered HTTP {response.status_code}")
                body = await _read_limited(response, limit)
                return Fetched(
                    200,
                    body,
                    response.headers.get("content-type", ""),
                    response.headers.get("etag"),
                    response.headers.get("last-modified"),
                )
        except httpx.TimeoutException:
            last_problem = f"no answer within {settings.feed_timeout_seconds:g} s"
        except httpx.TooManyRedirects:
            raise FeedError("Too many redirects") from None
        except httpx.TransportError:
            last_problem = COULD_NOT_CONNECT  # whatever the cause: no map of the network
        except httpx.InvalidURL as exc:
            raise FeedError(f"Invalid URL: {exc}") from None
    raise FeedError(f"The feed could not be fetched after {settings.feed_retries} tries: "
                    f"{last_problem}")  # fmt: skip
