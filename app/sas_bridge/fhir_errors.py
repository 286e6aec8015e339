"""Errors under /fhir are FHIR OperationOutcome resources, as the SAS guide requires."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import JSONResponse

if TYPE_CHECKING:
    from app.errors import AppError

FHIR_JSON = "application/fhir+json"

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
