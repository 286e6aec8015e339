"""One error hierarchy, rendered as RFC 9457 problem+json in one place."""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import asyncpg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError, ResponseValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from app.config import get_settings

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of the API is shaped."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "model": Problem,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


# Documented on every operation (OpenAPI), so clients and fuzzers know the error shape.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem("Malformed request (JSON, parameters)"),
    401: _problem("Missing, unknown or revoked API key"),
    403: _problem("This key's role may not do this"),
    404: _problem("Not found, or not visible to this key"),
    409: _problem("Conflict with the current state"),
    413: _problem("Request body too large"),
    422: _problem("Invalid request: see `errors`"),
    429: _problem("Rate limit of this key reached; see Retry-After"),
    503: _problem("The database is unreachable or restarting; retry after Retry-After seconds"),
}


class AppError(Exception):
    """Base of every error a client may see. Subclasses fix status, type slug and title."""

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal server error"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors is not None else None
        self.headers = headers
        self.extra = extra


class BadRequest(AppError):
    status, slug, title = 400, "bad-request", "Bad request"


class MalformedJSON(BadRequest):
    slug, title = "malformed-json", "Malformed JSON body"


class Unauthorized(AppError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extra)


class Forbidden(AppError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(AppError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class Conflict(AppError):
    status, slug, title = 409, "conflict", "Conflict"


class SlotUnavailable(Conflict):
    slug, title = "slot-unavailable", "Slot not bookable"


class PayloadTooLarge(AppError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(AppError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(AppError):
    status, slug, title = 422, "validation-error", "Invalid request"

    @classmethod
    def field(cls, loc: Sequence[str | int], msg: str) -> ValidationFailed:
        """A business-rule error on one field, shaped like request validation errors."""
        where = ".".join(str(part) for part in loc)
        return cls(f"{where}: {msg}", errors=[{"loc": list(loc), "msg": msg}])


class TooManyRequests(AppError):
    status, slug, title = 429, "too-many-requests", "Too many requests"


class ServiceUnavailable(AppError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"


def problem_body(error: AppError, request: Request | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"{get_settings().problem_base}/{error.slug}",
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
    }
    if request is not None:
        body["instance"] = request.url.path
    if error.errors is not None:
        body["errors"] = error.errors
    body.update(error.extra)
    return body


def problem_response(error: AppError, request: Request | None = None) -> ProblemResponse:
    return ProblemResponse(
        jsonable_encoder(problem_body(error, request)),
        status_code=error.status,
        headers=error.headers,
    )


def _validation_error(exc: RequestValidationError) -> AppError:
    errors: list[dict[str, Any]] = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            return MalformedJSON(f"The request body is not valid JSON: {ctx.get('error', 'parse')}")
        loc = [part for part in err.get("loc", ()) if part != "body" or len(err["loc"]) == 1]
        msg = str(err.get("msg", "invalid value"))
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        errors.append({"loc": loc, "msg": msg})
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"]) or "request"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ValidationFailed(f"{where}: {first['msg']}{more}", errors=errors)


# SQLSTATEs saying the database cannot serve now, whatever the request: connection
# exceptions (class 08), shutdown or restart in progress (57P01-57P03), too many connections.
_UNAVAILABLE_STATES = ("57P01", "57P02", "57P03", "53300")


def transient_error(exc: BaseException) -> AppError | None:
    """A 503 for failures that say nothing about the request: the database unreachable or
    restarting, or a concurrent transaction in the way. None for anything else."""
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state in ("40P01", "40001"):  # deadlock or serialisation failure: nothing was saved
        return ServiceUnavailable(
            "A concurrent change got in the way; nothing was saved, try again",
            headers={"Retry-After": "1"},
        )
    lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
    if (
        lost
        or (state and (state.startswith("08") or state in _UNAVAILABLE_STATES))
        or (isinstance(exc, ConnectionError | TimeoutError | socket.gaierror))
    ):
        # The connection may have dropped during the commit: only a retry with the same
        # Idempotency-Key tells whether the write happened.
        return ServiceUnavailable(
            "The database cannot be reached just now. Retry in a moment; a write sent with "
            "an Idempotency-Key is safe to retry with the same key.",
            headers={"Retry-After": "2"},
        )
    return None


def _log_unhandled(request: Request, exc: Exception) -> None:
    """Log an unexpected failure without its message. A database error's text may quote what
    the statement carried (PostgreSQL echoes values: "invalid input syntax: ...", "Key (ins)=
    (...)"), so only its type, SQLSTATE and the stack's frames are logged, never its message
    nor the chained driver exception's."""
    if isinstance(exc, DBAPIError | asyncpg.PostgresError):
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        log.error(
            "unhandled database error",
            extra={
                "path": request.url.path,
                "error": type(orig).__name__ if orig is not None else type(exc).__name__,
                "sqlstate": getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None),
                "stack": "".join(traceback.format_tb(exc.__traceback__)),
            },
        )
        return
    if isinstance(exc, ValidationError | ResponseValidationError):
        # Their text quotes the input (a response carrying a patient): locations and kinds only.
        errors = exc.errors()
        log.error(
            "unhandled validation error",
            extra={
                "path": request.url.path,
                "error": type(exc).__name__,
                "problems": [
                    {"loc": list(e.get("loc", ())), "type": e.get("type")} for e in errors
                ],
                "stack": "".join(traceback.format_tb(exc.__traceback__)),
            },
        )
        return
    log.exception("unhandled error", extra={"path": request.url.path})


class ErrorRenderer(NamedTuple):
    """Another form of the errors of the requests it claims (by path, by what they accept).
    The error hierarchy knows none: the application hands them over at start-up."""

    claims: Callable[[Request], bool]
    render: Callable[[Request, AppError], Response]


def install_error_handlers(app: FastAPI, renderers: Sequence[ErrorRenderer] = ()) -> None:
    """Every error of `app` goes through render(): the first of `renderers` that claims the
    request renders it, in the order given; the others get problem+json."""
    app.state.error_renderers = tuple(renderers)

    async def app_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AppError)
        return render(request, exc)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return render(request, _validation_error(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        error: AppError
        if exc.status_code == 404:
            error = NotFound(f"No resource at {request.url.path}")
        elif exc.status_code == 405:
            error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
        else:
            error = AppError(str(exc.detail))
            error.status = exc.status_code
            error.slug, error.title = "http-error", "HTTP error"
        if exc.headers:
            error.headers = dict(exc.headers)
        return render(request, error)

    async def unhandled(request: Request, exc: Exception) -> Response:
        transient = transient_error(exc)
        if transient is not None:
            log.warning(
                "transient database failure",
                extra={"path": request.url.path, "error": type(exc).__name__},
            )
            return render(request, transient)
        _log_unhandled(request, exc)
        return render(request, AppError("An unexpected error occurred; it has been logged."))

    app.add_exception_handler(AppError, app_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    # Database and connection failures are answered like any error (Starlette re-raises what
    # reaches the catch-all `Exception` handler, and uvicorn then drops the keep-alive
    # connection, so that a client's next request on it fails with no answer at all).
    for kind in (
        DBAPIError,
        asyncpg.PostgresError,
        ConnectionError,
        TimeoutError,
        socket.gaierror,
    ):
        app.add_exception_handler(kind, unhandled)
    app.add_exception_handler(Exception, unhandled)


def render(request: Request, error: AppError) -> Response:
    """The single place errors become responses: the first of the application's renderers
    that claims the request (a FHIR OperationOutcome, a French page), else problem+json."""
    app = request.scope.get("app")
    renderers: tuple[ErrorRenderer, ...] = getattr(app.state, "error_renderers", ()) if app else ()
    for renderer in renderers:
        if renderer.claims(request):
            return renderer.render(request, error)
    return problem_response(error, request)
