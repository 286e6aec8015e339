"""What a client may send, bounded: dates and timestamps between 2000-01-01 and 2100-12-31,
integers within what their field can mean, and text PostgreSQL can store (no NUL character,
no lone surrogate). Beyond these bounds a request is a 422, never a 500 from a date overflow
or a statement the database refuses.

The schemas use `BoundedDate` and `BoundedDatetime` for every date and timestamp they accept;
parameters read by hand (FHIR searches, cursors) use `check_date` and `check_instant`. Text is
checked once for all routes, before any of them runs (`unstorable_text`, called by the edge
middleware): a JSON string or key, a form field, a query parameter or the path."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, MutableMapping
from datetime import date, datetime
from email.message import Message
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Path
from pydantic import AfterValidator, AwareDatetime, Field

from app.errors import ValidationFailed

MIN_DATE = date(2000, 1, 1)
MAX_DATE = date(2100, 12, 31)
DATE_RANGE_MSG = f"must be between {MIN_DATE} and {MAX_DATE}"
# FHIR's `integer` is a signed 32-bit number: `_count` and `_offset` beyond it mean nothing.
MAX_FHIR_INTEGER = 2**31 - 1
# PostgreSQL's bigint: identifiers of the append-only logs.
MAX_BIGINT = 2**63 - 1
# An Assurance Maladie list of patients without a médecin traitant, imported at once (API,
# page, command): a CPTS's list is a few thousand lines; the page carries the file from the
# preview to the import, so it stays well within MAX_BODY_BYTES (1 MB by default) once encoded.
MT_IMPORT_MAX_BYTES = 600_000
MT_IMPORT_MAX_LINES = 5_000
MT_IMPORT_MAX_COLUMNS = 60

NUL_MSG = "must not contain NUL characters"
SURROGATE_MSG = "must be valid Unicode text (a lone surrogate is not)"


def check_date(value: date) -> date:
    if not MIN_DATE <= value <= MAX_DATE:
        raise ValueError(DATE_RANGE_MSG)
    return value


def check_instant(value: datetime) -> datetime:
    """The date as written (in its own offset): an instant so bounded converts to any zone
    and takes the service's windows (48 h, 7 days, a year) without overflowing."""
    if not MIN_DATE <= value.date() <= MAX_DATE:
        raise ValueError(DATE_RANGE_MSG)
    return value


BoundedDate = Annotated[
    date,
    AfterValidator(check_date),
    Field(description=f"A date between {MIN_DATE} and {MAX_DATE}"),
]
BoundedDatetime = Annotated[
    AwareDatetime,
    AfterValidator(check_instant),
    Field(description=f"RFC 3339 with an offset, between {MIN_DATE} and {MAX_DATE}"),
]


# The identifier of a row of a log table (bigint identity), as a path parameter.
LogIdPath = Annotated[int, Path(ge=1, le=MAX_BIGINT)]


# Text PostgreSQL cannot store ------------------------------------------------------------

# A JSON `\u0000` escape or a UTF-16 surrogate escape (a pair is checked once decoded).
_SUSPECT_JSON = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def _text_fault(text: str) -> str | None:
    if "\x00" in text:
        return NUL_MSG
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_MSG
    return None


def _json_faults(value: Any, loc: list[str | int]) -> Iterator[tuple[list[str | int], str]]:
    if isinstance(value, str):
        fault = _text_fault(value)
        if fault:
            yield loc, fault
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_faults(item, [*loc, index])
    elif isinstance(value, dict):
        for key, item in value.items():
            fault = _text_fault(key)
            if fault:
                yield [*loc, key.encode("utf-8", "replace").decode().replace("\x00", "")], fault
            yield from _json_faults(item, [*loc, key])


def _pairs_fault(pairs: list[tuple[str, str]], where: str) -> tuple[list[str | int], str] | None:
    for name, value in pairs:
        fault = _text_fault(name) or _text_fault(value)
        if fault:
            clean = name.replace("\x00", "")
            return ([where, clean] if where else [clean]), fault
    return None


def _content_kind(headers: dict[bytes, bytes]) -> str:
    raw = headers.get(b"content-type")
    if raw is None:
        return "json"  # FastAPI reads a body without a content type as JSON
    message = Message()
    message["content-type"] = raw.decode("latin-1")
    if message.get_content_type() == "application/x-www-form-urlencoded":
        return "form"
    subtype = message.get_content_subtype()
    if message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    ):
        return "json"
    return "other"


def _body_fault(headers: dict[bytes, bytes], body: bytes) -> tuple[list[str | int], str] | None:
    kind = _content_kind(headers)
    if kind == "form" and (b"%00" in body or b"\x00" in body):
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return _pairs_fault(pairs, "")
    if kind == "json" and _SUSPECT_JSON.search(body):
        try:
            document = json.loads(body)
        except ValueError:
            return None  # malformed: FastAPI answers it
        return next(_json_faults(document, []), None)
    return None


def unstorable_text(scope: MutableMapping[str, Any], body: bytes) -> ValidationFailed | None:
    """The first NUL character or lone surrogate of the request's path, query or body, as a
    422 naming where it is (never echoing the value); None when there is none."""
    fault: tuple[list[str | int], str] | None = None
    path = scope.get("path", "")
    if "\x00" in path:
        fault = (["path"], NUL_MSG)
    query: bytes = scope.get("query_string", b"")
    if fault is None and (b"%00" in query or b"\x00" in query):
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        fault = _pairs_fault(pairs, "query")
    if fault is None and body:
        fault = _body_fault(dict(scope.get("headers") or []), body)
    if fault is None:
        return None
    loc, msg = fault
    return ValidationFailed.field(loc, msg)
