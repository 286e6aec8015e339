"""Schemathesis hooks of tests/test_api_fuzzing.py (loaded through SCHEMATHESIS_HOOKS): half
or more of the generated cases of every operation get one hostile value, the inputs that used
to answer 500 (API.md "Bounds"): NUL characters (and a lone surrogate in JSON), huge and
negative integers, dates far outside 2000..2100, odd time zone offsets, odd `_offset`s and
forged cursors. They
replace a generated query parameter, path parameter or body value, or are added as one of the
parameters the schema cannot list (FHIR searches read `_offset`, `_count`, `start`, `date` and
`_since` by hand). Each call that carried one is tallied in $FUZZ_TALLY, by kind and status,
and the fuzzer's own key ($FUZZ_KEY_ID) is never revoked."""

from __future__ import annotations

import base64
import copy
import json
import os
from collections.abc import Iterator
from typing import Any

import schemathesis
from hypothesis import strategies as st

NUL = ["\x00", "Jeanne\x00", "\x00' OR 1=1 --", "%00\x00"]
HUGE = [10**20, -(10**20), 10**30, 2**31, 2**63, str(10**30), "-1"]
FAR_DATES = [
    "9999-12-31",
    "0001-01-01",
    "2101-01-01",
    "1999-12-31",
    "9999-12-31T23:00:00-05:00",
    "9999-12-31T00:00:00+00:00",
    "0001-01-01T00:05:00+01:00",
    "ge9999-12-31T23:00:00-05:00",
    "lt0001-01-01T00:05:00+01:00",
]
ODD_TIME_OFFSETS = ["2027-01-04T10:00:00+23:59", "2027-01-04T10:00:00-23:59", "2027-01-04T10:00:00"]
ODD_PAGING = ["1.5", "0x10", " 7", "1_000", "-0", "", "١٢"]  # the last: Arabic-Indic digits


def _cursor(*values: Any) -> str:
    raw = json.dumps([str(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_ID = "0b0e7a52-0000-4000-8000-000000000000"
FORGED_CURSORS = [
    _cursor(10**30, "2027-01-04T10:00:00+01:00", _ID),  # MT queue: priority
    _cursor("9999-12-31T23:00:00-05:00", "0.0", _ID),  # slot search
    _cursor("2027-01-04T10:00:00+01:00", "inf", _ID),
    _cursor("9999-12-31T23:00:00-05:00", _ID),  # (time, id) lists
    _cursor(10**30),  # activity and audit logs
    _cursor("²"),
]

QUERY_POOL = [*NUL, *HUGE, *FAR_DATES, *ODD_TIME_OFFSETS, *ODD_PAGING, *FORGED_CURSORS]
BODY_POOL = [*NUL, "CPTS \ud800", *HUGE, *FAR_DATES, *ODD_TIME_OFFSETS]
PATH_POOL = [*NUL, str(10**30), "9999-12-31"]
# Parameters added to any operation: the FHIR searches read these without declaring them.
EXTRA_QUERY = ["cursor", "limit", "_offset", "_count", "start", "date", "_since", "from", "to"]
PAGING_PARAMS = ["_offset", "_count", "limit", "cursor"]


def _with(mapping: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    return {**mapping, name: value}


def _one_hostile(mapping: dict[str, Any], names: list[str], pool: list[Any]) -> Any:
    if not names:
        return st.just(mapping)
    hostile = st.builds(_with, st.just(mapping), st.sampled_from(names), st.sampled_from(pool))
    return st.one_of(st.just(mapping), hostile)


@schemathesis.hook
def flatmap_query(context: Any, query: dict[str, Any] | None) -> Any:
    """A third of the cases as generated, a third with one hostile value anywhere in the query,
    a third with a hostile paging parameter or cursor."""
    query = dict(query or {})
    anywhere = sorted(set(query) | set(EXTRA_QUERY))
    paging = st.builds(
        _with,
        st.just(query),
        st.sampled_from(PAGING_PARAMS),
        st.sampled_from([*HUGE, *ODD_PAGING, *FORGED_CURSORS]),
    )
    return st.one_of(_one_hostile(query, anywhere, QUERY_POOL), paging)


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    params = dict(path_parameters or {})
    return _one_hostile(params, sorted(params), PATH_POOL)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))
    if path:
        yield path


def _replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    copied = copy.deepcopy(document)
    target = copied
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return copied


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> Any:
    if not isinstance(body, dict | list):
        return st.just(body)
    paths = list(_paths(body))
    if not paths:
        return st.just(body)
    hostile = st.builds(
        _replaced, st.just(body), st.sampled_from(paths), st.sampled_from(BODY_POOL)
    )
    return st.one_of(st.just(body), hostile)


def _leaves(value: Any, name: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, name)
    else:
        yield name, value


def kinds(case: Any) -> set[str]:
    """The hostile values a case carries, by kind."""
    found: set[str] = set()
    for part in (case.query, case.path_parameters, case.body):
        for name, value in _leaves(part or {}):
            if isinstance(value, str) and ("\x00" in value or "\ud800" in value):
                found.add("nul")
            if value in HUGE and not isinstance(value, bool):
                found.add("huge_integer")
            if value in FAR_DATES:
                found.add("far_date")
            if value in ODD_TIME_OFFSETS:
                found.add("odd_time_offset")
            if name == "_offset" and (value in HUGE or value in ODD_PAGING):
                found.add("odd_offset")
            if value in FORGED_CURSORS:
                found.add("forged_cursor")
    return found


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """The fuzzer must not revoke its own key (it finds its id in `GET /v1/keys`): every
    later request would be a 401 and test nothing. Another id is revoked instead."""
    own = os.environ.get("FUZZ_KEY_ID")
    if own and case.path_parameters and case.path_parameters.get("key_id") == own:
        case.path_parameters["key_id"] = "0b0e7a52-0000-4000-8000-00000000dead"
    if getattr(case, "media_type", None) == "multipart/form-data" and isinstance(case.body, dict):
        # A lone surrogate has no UTF-8 form: JSON escapes it, a multipart field cannot carry
        # it (the client fails before sending). A NUL character, as hostile, takes its place.
        case.body = {
            k: v.replace("\ud800", "\x00") if isinstance(v, str) else v
            for k, v in case.body.items()
        }


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    found = kinds(case)
    tally = os.environ.get("FUZZ_TALLY")
    if found and tally:
        with open(tally, "a", encoding="utf-8") as out:
            out.write(f"{response.status_code} {' '.join(sorted(found))}\n")
