"""Unmet SNP requests: counts of what a regulator could not place, never a patient."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Double, ForeignKey, Index, Integer, String, text
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
