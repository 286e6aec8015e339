"""Webhook endpoint and delivery shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, Field

from app.validators import OutModel, StrictModel

WebhookEvent = Literal[
    "booking.held",
    "booking.booked",
    "booking.cancelled",
    "booking.honored",
    "booking.no_show",
    "booking.overbooked",
    "hold.expired",
    "offer.low",
    "crisis.declared",
    "crisis.ended",
]


class WebhookIn(StrictModel):
    url: AnyHttpUrl = Field(description="HTTPS endpoint receiving signed JSON POSTs")
    events: list[WebhookEvent] = Field(
        default_factory=list, description="Event types to receive; empty means all"
    )


class WebhookOut(OutModel):
    id: uuid.UUID
    url: str
    events: list[str]
    active: bool
    practice_id: uuid.UUID | None
    regulator_id: uuid.UUID | None
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="HMAC-SHA256 signing secret, shown this once")


class DeliveryOut(OutModel):
    id: int
    event_id: uuid.UUID
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None


# Agenda feeds -------------------------------------------------------------------------------


class FeedIn(StrictModel):
    url: AnyHttpUrl = Field(
        description="The practice software's iCalendar export URL, or a FHIR Slot search URL"
    )
    format: Literal["ical", "fhir"] = Field(description="ical or fhir")
    category: str = Field(
        default="SNP",
        min_length=1,
        max_length=100,
        description="iCalendar events in this category (or marked free) are slots",
    )
    modality: Literal["cabinet", "visite", "teleconsultation"] = Field(
        default="cabinet",
        description="Modality of the slots, unless an event's category or a FHIR serviceType "
        "(AMB, HH, VR) says otherwise",
    )
    visibility: Literal["sas", "cpts", "public"] = "sas"
    slot_minutes: int | None = Field(
        default=None, ge=5, le=720, description="Cut longer events into slots of this length"
    )
    active: bool = Field(default=True, description="Polled by the import job")


class FeedOut(OutModel):
    id: uuid.UUID
    practitioner_id: uuid.UUID
    url: str
    format: str
    category: str
    modality: str
    visibility: str
    slot_minutes: int | None
    active: bool
    last_status: str = Field(
        description="pending, ok, partial (some events skipped), not_modified or failed"
    )
    last_error: str | None = Field(
        description="Why the last import failed, or how many events it skipped"
    )
    last_skipped: int = Field(description="Events the last import read could not use as slots")
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    next_fetch_at: datetime


class ImportConflict(BaseModel):
    kind: str = Field(
        default="not_imported",
        description="not_imported: a feed slot overlapping another slot or another event of "
        "the feed; kept: a booked or held slot the feed no longer has",
    )
    start: datetime
    end: datetime
    reason: str
    slot_id: uuid.UUID | None = Field(default=None, description="The slot overlapped, or kept")
    uid: str | None = Field(default=None, description="The feed's event (UID) not imported")
    with_uid: str | None = Field(default=None, description="The event of the same feed it overlaps")


class ImportSkipped(BaseModel):
    uid: str = Field(description="The event's UID (or FHIR Slot/id)")
    start: str | None = Field(description="Its (first) start concerned, local time or date")
    reason: str
    occurrences: int = Field(default=1, description="Occurrences skipped for this reason")


class ImportOut(OutModel):
    id: uuid.UUID
    status: str = Field(
        description="ok, partial (some events skipped, the rest applied), not_modified or "
        "failed (then nothing changed)"
    )
    reason: str | None = Field(description="Why the import failed, or what it skipped")
    started_at: datetime
    finished_at: datetime
    bytes: int
    slots_in_feed: int
    added: int
    removed: int
    unchanged: int
    conflicts: list[ImportConflict] = Field(
        description="slots_in_feed = added + unchanged + the conflicts of kind not_imported"
    )
    skipped: list[ImportSkipped] = Field(description="Events that could not be slots, and why")
    skipped_count: int = Field(description="Events skipped (the list keeps the first 200)")
    encoding: str | None = Field(description="The text encoding read, declared or guessed")
