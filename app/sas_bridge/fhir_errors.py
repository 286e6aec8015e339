"""Errors under /fhir are FHIR OperationOutcome resources, as the SAS guide requires."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.errors import AppError, ErrorRenderer

FHIR_JSON = "application/fhir+json"


class FhirResponse(JSONResponse):
    """application/fhir+json, encoded with orjson: a guide search answers close to a megabyte,
    which the standard library encodes several times slower."""

    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


_ISSUE_CODE = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    413: "too-costly",
    422: "processing",
    429: "throttled",
}


def operation_outcome_response(error: AppError) -> JSONResponse:
    issues = [
        {
            "severity": "error",
            "code": _ISSUE_CODE.get(error.status, "exception"),
            "diagnostics": error.detail,
        }
    ]
    for item in error.errors or []:
        loc = ".".join(str(part) for part in item.get("loc", []))
        issue = {"severity": "error", "code": "invalid", "diagnostics": str(item.get("msg"))}
        if loc:
            issue["expression"] = [loc]  # type: ignore[assignment]
        issues.append(issue)
    return JSONResponse(
        {"resourceType": "OperationOutcome", "issue": issues},
        status_code=error.status,
        headers=error.headers,
        media_type=FHIR_JSON,
    )


def _is_fhir(request: Request) -> bool:
    return request.url.path.startswith("/fhir")


def _operation_outcome(request: Request, error: AppError) -> Response:
    return operation_outcome_response(error)


# Handed to app.errors at start-up: every error under /fhir is an OperationOutcome.
FHIR_ERRORS = ErrorRenderer(claims=_is_fhir, render=_operation_outcome)
