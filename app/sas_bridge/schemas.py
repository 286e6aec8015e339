"""Webhook endpoint and delivery shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AnyHttpUrl, Field

from app.validators import OutModel, StrictModel

WebhookEvent = Literal[
    "booking.held",
    "booking.booked",
    "booking.cancelled",
    "booking.honored",
    "booking.no_show",
    "booking.overbooked",
    "hold.expired",
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
