"""The append-only activity log: the single source of every indicator. No patient data."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import Uuid

from app.db import Base


class ActivityEvent(Base):
    __tablename__ = "activity_event"
    __table_args__ = (Index("ix_activity_event_territory_type_at", "territory_id", "type", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()"), nullable=False
    )
    type: Mapped[str] = mapped_column(String(60))
    territory_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("territory.id", ondelete="RESTRICT")
    )
    practitioner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    subject_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class AciTarget(Base):
    """A target of the territory's ACI contract: one indicator, one year."""

    __tablename__ = "aci_target"

    territory_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("territory.id", ondelete="CASCADE"), primary_key=True
    )
    year: Mapped[int] = mapped_column(primary_key=True)
    indicator: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[float] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()"), onupdate=text("now()")
    )


class OfferDay(Base):
    """The SNP offer ledger rolled up per practitioner and local day: net slots and minutes
    of the `slots.offered` / `slots.withdrawn` events. A projection of the log, kept by a
    statement trigger on `activity_event` in the same transaction as the events (so it is
    never behind), and rebuildable from the log at any time (migration 0013)."""

    __tablename__ = "offer_day"

    territory_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    practitioner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    slots: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    minutes: Mapped[int] = mapped_column(Integer, server_default=text("0"))
