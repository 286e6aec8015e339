"""Pure ASGI middleware: request id, body size limit, text PostgreSQL cannot store (NUL),
access log and latency metrics."""

from __future__ import annotations

import logging
import time
import uuid

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.bounds import unstorable_text
from app.errors import PayloadTooLarge, ValidationFailed, problem_response, render
from app.logging_setup import request_id_var
from app.metrics import REQUEST_LATENCY
from app.web.render import WEB_PREFIXES

log = logging.getLogger("creneau.access")


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if 0 < len(incoming) <= 64 else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder = {"status": 500, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                await self._too_large(scope, receive, send_wrapper)
                return
            body = b""
            chunked = declared is None and b"chunked" in headers.get(b"transfer-encoding", b"")
            if chunked or (declared is not None and declared != b"0"):
                # Read the body here, within the limit (a chunked one declares no length),
                # then replay it to the application.
                read = await self._read_limited(receive)
                if read is None:
                    await self._too_large(scope, receive, send_wrapper)
                    return
                body = read
                receive = _replay(body, receive)
            unstorable = unstorable_text(scope, body)
            if unstorable is not None:
                await self._refuse(scope, receive, send_wrapper, unstorable)
                return
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            REQUEST_LATENCY.labels(scope["method"], template, str(status_holder["status"])).observe(
                elapsed
            )
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": template,
                    "status": status_holder["status"],
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)

    async def _read_limited(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, error: ValidationFailed
    ) -> None:
        """Refused before any route runs, rendered as every error is (a French page for the
        pages, an OperationOutcome under /fhir)."""
        if scope["path"] == "/" or scope["path"].startswith(WEB_PREFIXES):
            error.extra["page_message"] = (
                "Un champ contient un caractère nul ou invalide, qui ne peut pas être "
                "enregistré : retirez-le, puis envoyez à nouveau."
            )
        await render(Request(scope, receive), error)(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = PayloadTooLarge(f"The request body exceeds {self.max_body_bytes} bytes")
        await problem_response(error)(scope, receive, send)
