"""A real HTTP server on 127.0.0.1 for tests: it records what it receives and answers as told
(status code, delay). Runs in the test's event loop under uvicorn."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import Response


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    method: str = "POST"
    query: str = ""


@dataclass
class Receiver:
    status: int = 200
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        self.received.append(
            Received(
                request.url.path, dict(request.headers), body, request.method, request.url.query
            )
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        await Response(status_code=self.status)(scope, receive, send)

    async def start(self, **tls: Any) -> Receiver:
        """`tls`: uvicorn's ssl_certfile, ssl_keyfile, ssl_ca_certs, ssl_cert_reqs."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        config = uvicorn.Config(
            self, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **tls
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
            await asyncio.sleep(0.01)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task
