"""Webhook endpoints and the outbox: side effects that leave the database are written here in
the same transaction as the change, then delivered after commit, with retries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, CreatedAtMixin, IdMixin

OUTBOX_STATUSES = ("pending", "delivered", "failed")
OUTBOX_KINDS = ("webhook", "sas_appointment")


class WebhookEndpoint(IdMixin, CreatedAtMixin, Base):
    """An HTTPS endpoint of a practice or a SAS, told of its bookings' changes."""

    __tablename__ = "webhook_endpoint"
    __table_args__ = (
        CheckConstraint("(practice_id IS NULL) <> (regulator_id IS NULL)", name="one_owner"),
    )

    practice_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("practice.id", ondelete="CASCADE"), index=True
    )
    regulator_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("regulator.id", ondelete="CASCADE"), index=True
    )
    # Set for an endpoint registered with a regulator key minted by a coordinator: only that
    # territory's bookings are sent to it (the key acts nowhere else).
    territory_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("territory.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(500))
    # Used to sign deliveries (HMAC-SHA256); shown once at creation.
    secret: Mapped[str] = mapped_column(String(100))
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(40)), default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class OutboxMessage(Base):
    __tablename__ = "outbox_message"
    __table_args__ = (
        CheckConstraint(f"status IN {OUTBOX_STATUSES}", name="status"),
        CheckConstraint(f"kind IN {OUTBOX_KINDS}", name="kind"),
        CheckConstraint("(kind = 'webhook') = (endpoint_id IS NOT NULL)", name="endpoint"),
        Index(
            "ix_outbox_message_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    # Messages with the same key are delivered in order: a PUT never overtakes its POST.
    ordering_key: Mapped[uuid.UUID | None] = mapped_column(index=True)
    territory_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("territory.id", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    event_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
