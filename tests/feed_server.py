"""A real HTTP server serving agenda feed files for the import tests: per path a body, a
content type, a status, an ETag honoured with 304, a delay, or an endless body."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tests.receiver import Receiver


@dataclass
class Feed:
    body: bytes = b""
    content_type: str = "text/calendar; charset=utf-8"
    status: int = 200
    etag: str | None = None
    delay: float = 0.0
    endless: bool = False  # streams 13 MB without Content-Length
    fail_first: int = 0  # answer 503 to this many requests first


@dataclass
class FeedServer(Receiver):
    feeds: dict[str, Feed] = field(default_factory=dict)
    hits: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def serve(self, path: str, feed: Feed) -> str:
        self.feeds[path] = feed
        return f"{self.url}{path}"

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        self.hits.append((request.url.path, dict(request.headers)))
        feed = self.feeds.get(request.url.path)
        if feed is None:
            await Response(status_code=404)(scope, receive, send)
            return
        if feed.delay:
            await asyncio.sleep(feed.delay)
        if feed.fail_first > 0:
            feed.fail_first -= 1
            await Response(status_code=503)(scope, receive, send)
            return
        if feed.etag and request.headers.get("if-none-match") == feed.etag:
            await Response(status_code=304, headers={"ETag": feed.etag})(scope, receive, send)
            return
        # The content type exactly as given (Starlette would add a charset to text/ types).
        headers = {"Content-Type": feed.content_type}
        if feed.etag:
            headers["ETag"] = feed.etag
        if feed.endless:

            async def chunks():  # type: ignore[no-untyped-def]
                yield b"BEGIN:VCALENDAR\r\n"
                for _ in range(200):  # 13 MB without Content-Length; a client stops early
                    yield b"X-FILLER:" + b"x" * 65_000 + b"\r\n"
                    await asyncio.sleep(0)

            response: Response = StreamingResponse(chunks(), media_type=feed.content_type)
        else:
            response = Response(feed.body, status_code=feed.status, headers=headers)
        await response(scope, receive, send)
