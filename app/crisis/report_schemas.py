"""The crisis report as the API returns it (JSON) and the page and CSV show it. Times are in
the territory's local time (with their offset); days are the territory's local days."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

TimelineEvent = Literal["started", "declared", "called", "capacity_opened", "ended"]


class ReportDay(BaseModel):
    day: date
    slots_opened: int = Field(description="Crisis slots starting that day (closed ones apart)")
    slots_created: int = Field(description="Crisis slots created that day")
    pledge: int = Field(description="Slots the plan's volunteers pledged for that weekday")
    booked: int = Field(description="Crisis slots of the day held by a standing booking")
    honoured: int
    no_show: int
    cancelled: int = Field(description="Cancelled bookings of the day's crisis slots")
    unmet: int = Field(description="Unmet requests declared that day in the communes concerned")


class ReportTotals(BaseModel):
    slots_opened: int
    slots_created: int
    pledge: int
    booked: int
    honoured: int
    no_show: int
    cancelled: int
    unmet: int
    empty_searches: int
    volunteers_called: int
    pledges_honoured: int
    opened_within_2h: int
    opened_within_24h: int


class ReportCall(BaseModel):
    practitioner_id: uuid.UUID
    practitioner: str
    practice_id: uuid.UUID
    practice: str
    sent_at: datetime
    mail_status: str
    opened_at: datetime | None
    minutes_after_call: int | None = Field(description="From the call to the opening")
    minutes_after_declaration: int | None = Field(description="From the declaration")
    slots_opened: int


class TimelineEntry(BaseModel):
    at: datetime
    event: TimelineEvent
    practitioner_id: uuid.UUID | None = None
    practitioner: str | None = None
    slots: int | None = None


class CrisisSummary(BaseModel):
    id: uuid.UUID
    territory_id: uuid.UUID
    kind: str
    title: str
    communes: list[str]
    started_at: datetime
    expected_end_at: datetime
    declared_at: datetime
    ended_at: datetime | None
    running: bool


class CrisisReport(BaseModel):
    crisis: CrisisSummary
    timezone: str
    first_day: date
    last_day: date
    days: list[ReportDay]
    totals: ReportTotals
    unmet_by_reason: dict[str, int]
    unmet_by_commune: dict[str, int] = Field(
        description="Declared unmet requests by INSEE code (`inconnue`: none given)"
    )
    calls: list[ReportCall]
    timeline: list[TimelineEntry]
    definitions: str = "docs/crisis-report.md"
