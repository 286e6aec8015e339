"""Unmet SNP requests: counts of what a regulator could not place, never a patient."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import Uuid

from app.db import Base, IdMixin

# Declared by the regulator, or counted by the search page when a search found nothing.
KINDS = ("declared", "empty_search")
REASONS = (
    "no_slot",
    "no_suitable_slot",
    "too_far",
    "too_late",
    "modality_unavailable",
    "patient_refused",
    "other",
)
MODALITIES = ("cabinet", "visite", "teleconsultation")


class UnmetRequest(IdMixin, Base):
    """One SAS request that was not placed. No patient identity: a count, not a person."""

    __tablename__ = "unmet_request"
    __table_args__ = (
        CheckConstraint(f"kind IN {KINDS}", name="kind"),
        CheckConstraint(f"reason IN {REASONS}", name="reason"),
        CheckConstraint(f"modality IS NULL OR modality IN {MODALITIES}", name="modality"),
        CheckConstraint(
            "wanted_within_hours IS NULL OR wanted_within_hours BETWEEN 1 AND 720",
            name="wanted_within_hours",
        ),
        CheckConstraint("(kind = 'empty_search') = (half_hour IS NOT NULL)", name="half_hour"),
        Index("ix_unmet_request_territory_recorded", "territory_id", "recorded_at"),
        # Empty searches count once per regulator, commune and half hour.
        Index(
            "uq_unmet_request_empty_search",
            "regulator_id",
            "commune_insee",
            "half_hour",
            unique=True,
            postgresql_where=text("kind = 'empty_search'"),
        ),
    )

    territory_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("territory.id", ondelete="CASCADE"))
    regulator_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("regulator.id", ondelete="SET NULL")
    )
    recorded_by_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(12))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The commune given, or (for a point) the commune of the nearest practice.
    commune_insee: Mapped[str | None] = mapped_column(String(5))
    lat: Mapped[float | None] = mapped_column(Double)
    lon: Mapped[float | None] = mapped_column(Double)
    modality: Mapped[str | None] = mapped_column(String(20))
    wanted_within_hours: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(30))
    sas_case_ref: Mapped[str | None] = mapped_column(String(64))
    # Start of the half hour an empty search fell in (its deduplication key).
    half_hour: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SlotCallFloor(Base):
    """A territory's floor: when its free SAS slots in the next `window_hours` fall under
    `floor`, the GPs who accept calls for slots are asked for more."""

    __tablename__ = "slot_call_floor"
    __table_args__ = (
        CheckConstraint("floor >= 0", name="floor"),
        CheckConstraint("window_hours BETWEEN 1 AND 168", name="window_hours"),
    )

    territory_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("territory.id", ondelete="CASCADE"), primary_key=True
    )
    floor: Mapped[int] = mapped_column(Integer)
    window_hours: Mapped[int] = mapped_column(Integer, server_default=text("48"))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()"), onupdate=text("now()")
    )


class SlotCallAreaFloor(IdMixin, Base):
    """A floor for a group of communes of a territory (its `name` unique in the territory):
    when the free SAS slots of its communes' practices in the next `window_hours` fall under
    `floor`, the GPs practising there who accept calls are asked for more. A commune is in one
    group of a territory at most (checked by app.unmet_demand.call_settings)."""

    __tablename__ = "slot_call_area_floor"
    __table_args__ = (
        UniqueConstraint("territory_id", "name", name="uq_slot_call_area_floor_territory_name"),
        CheckConstraint("floor >= 0", name="floor"),
        CheckConstraint("window_hours BETWEEN 1 AND 168", name="window_hours"),
        CheckConstraint("cardinality(communes) >= 1", name="communes"),
    )

    territory_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("territory.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    communes: Mapped[list[str]] = mapped_column(ARRAY(String(5)))
    floor: Mapped[int] = mapped_column(Integer)
    window_hours: Mapped[int] = mapped_column(Integer, server_default=text("48"))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()"), onupdate=text("now()")
    )


class SlotCallOptIn(Base):
    """A GP who accepts calls for slots, and where to write to them."""

    __tablename__ = "slot_call_opt_in"

    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioner.id", ondelete="CASCADE"), primary_key=True
    )
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )


class SlotCall(IdMixin, Base):
    """One call for slots sent to one GP: at most one a GP and local day (unique)."""

    __tablename__ = "slot_call"
    __table_args__ = (
        UniqueConstraint("practitioner_id", "day", name="uq_slot_call_practitioner_day"),
        CheckConstraint("mail_status IN ('pending', 'sent', 'failed')", name="mail_status"),
        Index("ix_slot_call_territory_sent", "territory_id", "sent_at"),
    )

    territory_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("territory.id", ondelete="CASCADE"))
    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioner.id", ondelete="CASCADE")
    )
    practice_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # The group of communes the call was made for; NULL: the territory's floor (or a group
    # since deleted).
    area_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("slot_call_area_floor.id", ondelete="SET NULL")
    )
    day: Mapped[date] = mapped_column(Date)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    free_slots: Mapped[int] = mapped_column(Integer)
    floor: Mapped[int] = mapped_column(Integer)
    mail_status: Mapped[str] = mapped_column(String(10), server_default=text("'pending'"))
