"""The append-only activity log: the single source of every indicator. No patient data."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
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

# Event types that change a booking (the booking's id is the event's `subject_id`).
BOOKING_EVENT_TYPES = (
    "booking.held",
    "booking.booked",
    "booking.overbooked",
    "booking.cancelled",
    "booking.honored",
    "booking.no_show",
    "hold.expired",
)


class ActivityEvent(Base):
    __tablename__ = "activity_event"
    __table_args__ = (
        Index("ix_activity_event_territory_type_at", "territory_id", "type", "at"),
        # The slots GPs publish themselves, for what a call for slots produced (0026).
        Index(
            "ix_activity_event_published_practitioner_at",
            "practitioner_id",
            "at",
            postgresql_where=text(
                "type = 'slots.offered' AND (subject_id IS NOT NULL OR actor_key_id IS NOT NULL)"
            ),
        ),
        Index(
            "ix_activity_event_booking_subject",
            "subject_id",
            postgresql_where=text(
                "type IN (" + ", ".join(f"'{t}'" for t in BOOKING_EVENT_TYPES) + ")"
            ),
        ),
    )

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
    """The SNP offer ledger rolled up per practitioner, audience (`sas`: slots the SAS sees,
    visibility sas or public; `cpts`: the CPTS's internal slots) and local day (`d`), week
    (`w`) or month (`m`, which quarters and years sum): net slots and minutes of the
    `slots.offered` / `slots.withdrawn` events, by the local day of the slots. Like
    `booking_state`, a projection of the log kept by a statement trigger on `activity_event`
    in the same transaction as the events (never behind, never ahead) and rebuilt from the
    log by `activity_rollup_rebuild()` (migration 0020)."""

    __tablename__ = "offer_period"

    territory_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    granularity: Mapped[str] = mapped_column(String(1), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    practitioner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    audience: Mapped[str] = mapped_column(String(4), primary_key=True, server_default="sas")
    slots: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    minutes: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class BookingState(Base):
    """Each booking at its final state, from all its events: the status of its last event
    (`held`, `booked`, `cancelled`, `expired`, `honored`, `no_show`), when it was last booked
    (`made_at`, with the lead time to its start), when it ended (cancelled or expired), and
    these instants' local days in the territory's zone. Rewritten by the trigger each time
    an event of the booking is appended, so a booking counts once, by its final status."""

    __tablename__ = "booking_state"

    booking_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    territory_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    practitioner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    overbooked: Mapped[bool] = mapped_column(Boolean)
    modality: Mapped[str] = mapped_column(String(20))
    start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    made_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lead_minutes: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    was_booked: Mapped[bool] = mapped_column(Boolean)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    made_day: Mapped[date | None] = mapped_column(Date)
    start_day: Mapped[date | None] = mapped_column(Date)
    ended_day: Mapped[date | None] = mapped_column(Date)


class BookingDay(Base):
    """The figures of `booking_state` summed per local day (`kind`: `made`, the day a booking
    was last booked, per modality; `start`, its appointment's day; `ended`, its cancellation's
    day) and shard: each refresh of a booking subtracts its old row and adds its new one, so
    the sums over shards always equal the sums over `booking_state`."""

    __tablename__ = "booking_day"

    territory_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(5), primary_key=True)
    modality: Mapped[str] = mapped_column(String(20), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    booked: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    overbooked: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    within_24h: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    within_48h: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    standing: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    honored: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    no_show: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    cancelled: Mapped[int] = mapped_column(Integer, server_default=text("0"))
