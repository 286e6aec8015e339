"""Availability rules, materialised slots and unavailabilities."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Time,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, CreatedAtMixin, IdMixin

MODALITIES = ("cabinet", "visite", "teleconsultation")
VISIBILITIES = ("sas", "cpts", "public")
SLOT_STATUSES = ("free", "held", "booked", "unavailable")
SLOT_SOURCES = ("rule", "manual", "import")


class AvailabilityRule(IdMixin, CreatedAtMixin, Base):
    """A recurring period, in local wall-clock time of the practitioner's territory."""

    __tablename__ = "availability_rule"
    __table_args__ = (
        CheckConstraint("slot_minutes BETWEEN 5 AND 720", name="slot_minutes"),
        CheckConstraint("valid_until IS NULL OR valid_until >= valid_from", name="validity"),
        CheckConstraint(f"modality IN {MODALITIES}", name="modality"),
        CheckConstraint(f"visibility IN {VISIBILITIES}", name="visibility"),
    )

    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioner.id", ondelete="CASCADE"), index=True
    )
    rrule: Mapped[str] = mapped_column(String(500))
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    slot_minutes: Mapped[int] = mapped_column(Integer)
    modality: Mapped[str] = mapped_column(String(20))
    visibility: Mapped[str] = mapped_column(String(10))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    # A surge rule opened for a crisis (app.crisis): ending the crisis closes its free slots.
    crisis_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("crisis.id", ondelete="SET NULL")
    )
    # Slots exist up to this instant; the daily job extends it to now + HORIZON_DAYS.
    materialized_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()"), onupdate=text("now()")
    )


class Slot(IdMixin, CreatedAtMixin, Base):
    """One bookable period. No two slots of a practitioner overlap (exclusion constraint)."""

    __tablename__ = "slot"
    __table_args__ = (
        ExcludeConstraint(
            ("practitioner_id", "="),
            (text("tstzrange(start, \"end\", '[)')"), "&&"),
            name="slot_no_overlap",
            using="gist",
        ),
        CheckConstraint('"end" > start', name="positive_length"),
        CheckConstraint(f"modality IN {MODALITIES}", name="modality"),
        CheckConstraint(f"visibility IN {VISIBILITIES}", name="visibility"),
        CheckConstraint(f"status IN {SLOT_STATUSES}", name="status"),
        CheckConstraint(f"source IN {SLOT_SOURCES}", name="source"),
        CheckConstraint(
            "(status = 'held') = (hold_expires_at IS NOT NULL)", name="hold_has_expiry"
        ),
        # Search: a territory's slots by start time, only those that may be bookable.
        Index(
            "ix_slot_search",
            "territory_id",
            "start",
            postgresql_where=text("status IN ('free', 'held')"),
        ),
        Index("ix_slot_practitioner_start", "practitioner_id", "start"),
        Index("ix_slot_rule_start", "rule_id", "start"),
        Index("ix_slot_territory_updated", "territory_id", "updated_at"),
        Index(
            "ix_slot_crisis_start",
            "crisis_id",
            "start",
            postgresql_where=text("crisis_id IS NOT NULL"),
        ),
        # One key for the practitioner and its territory: the denormalised territory always
        # is the practitioner's, and each inserted slot costs one referential check, not two
        # (materialisation inserts hundreds of thousands).
        ForeignKeyConstraint(
            ["practitioner_id", "territory_id"],
            ["practitioner.id", "practitioner.territory_id"],
            name="fk_slot_practitioner_territory",
            ondelete="CASCADE",
            onupdate="CASCADE",
        ),
    )

    practitioner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # Denormalised from the practitioner for the search index (kept equal by the key above).
    territory_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    rule_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("availability_rule.id", ondelete="SET NULL")
    )
    source: Mapped[str] = mapped_column(String(10))
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    modality: Mapped[str] = mapped_column(String(20))
    visibility: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12), default="free")
    hold_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Crisis capacity (app.crisis): the SAS sees these first while the crisis runs.
    crisis_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("crisis.id", ondelete="SET NULL")
    )
    # For incremental feeds (SMART Scheduling Links `_since`): every UPDATE bumps it.
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()"), onupdate=text("now()")
    )


class Unavailability(IdMixin, CreatedAtMixin, Base):
    """Holidays, sick days: slots inside become unavailable; bookings stay and are reported."""

    __tablename__ = "unavailability"
    __table_args__ = (CheckConstraint('"end" > start', name="positive_length"),)

    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioner.id", ondelete="CASCADE"), index=True
    )
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(String(300))
