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
    SmallInteger,
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


class OfferPeriod(Base):
    """The SNP offer ledger rolled up per practitioner and local week (`w`) or month (`m`,
    which quarters and years sum): net slots and minutes of the `slots.offered` /
    `slots.withdrawn` events, by the local day of the slots. Like the two tables below, a
    projection of the log kept by a statement trigger on `activity_event` in the same
    transaction as the events (never behind, never ahead) and filled from the log by
    migration 0013."""

    __tablename__ = "offer_period"

    territory_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    granularity: Mapped[str] = mapped_column(String(1), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    practitioner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    slots: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    minutes: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class BookingDay(Base):
    """Booking events counted per local day they were made, type and modality (spread over
    shards so that concurrent bookings rarely wait on one row)."""

    __tablename__ = "booking_day"

    territory_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    type: Mapped[str] = mapped_column(String(60), primary_key=True)
    modality: Mapped[str] = mapped_column(String(20), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    within_24h: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    within_48h: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    was_booked: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class BookedSlotDay(Base):
    """`booking.booked` events counted per local day of the booked slot (the fill rate)."""

    __tablename__ = "booked_slot_day"

    territory_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(Integer, server_default=text("0"))
