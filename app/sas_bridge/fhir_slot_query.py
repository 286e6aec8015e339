"""The parameters of a FHIR Slot search, read into a SlotQuery: the SAS guide's (chained
practitioner identifiers, a window of days, `_include`s) or an ordinary paged search's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from app.errors import BadRequest
from app.sas_bridge.fhir_params import (
    DEFAULT_COUNT,
    MAX_COUNT,
    paging_number,
    parse_date,
    parse_day,
    parse_id,
    rpps_value,
)

FHIR_STATUSES = ("free", "busy", "busy-tentative", "busy-unavailable")


IDENTIFIER_PARAMS = ("schedule.actor:Practitioner.identifier", "schedule.actor.identifier")


GUIDE_MAX_RESULTS = 20_000


@dataclass
class SlotQuery:
    start_bounds: list[tuple[str, datetime]] = field(default_factory=list)
    start_days: list[tuple[str, datetime, datetime]] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    practitioner_ids: list[uuid.UUID] = field(default_factory=list)
    rpps: list[str] | None = None  # None: no identifier filter; []: none known (no match)
    slot_ids: list[uuid.UUID] = field(default_factory=list)
    includes: set[str] = field(default_factory=set)
    count: int = DEFAULT_COUNT
    offset: int = 0

    @property
    def guide_search(self) -> bool:
        """The platform's search: every match in one Bundle, no paging."""
        return self.rpps is not None


def parse(params: list[tuple[str, str]]) -> SlotQuery:
    q = SlotQuery()
    for name, value in params:
        if name == "start":
            day = parse_day(value, name)
            if day is not None:
                q.start_days.append(day)
            else:
                q.start_bounds.append(parse_date(value, name))
        elif name == "status":
            for code in value.split(","):
                if code not in FHIR_STATUSES:
                    raise BadRequest(f"status: {code!r} is not one of {', '.join(FHIR_STATUSES)}")
                q.statuses.append(code)
        elif name == "schedule":
            q.practitioner_ids += [parse_id(v, name) for v in value.split(",") if v]
        elif name in IDENTIFIER_PARAMS:
            found = [rpps_value(token) for token in value.split(",") if token]
            q.rpps = (q.rpps or []) + [r for r in found if r is not None]
        elif name == "_id":
            q.slot_ids += [parse_id(v, name) for v in value.split(",") if v]
        elif name in ("_include", "_include:iterate"):
            q.includes.add(value)
        elif name == "_count":
            q.count = min(paging_number(name, value), MAX_COUNT)
        elif name == "_offset":
            q.offset = paging_number(name, value)
        # Other parameters (_format, _summary…) are ignored, as FHIR's lenient handling allows.
    return q
