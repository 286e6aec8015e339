"""Bookings of slots by SAS regulators, and of the CPTS's own slots by its members."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import Uuid

from app.db import Base, CreatedAtMixin, IdMixin
from app.patient_data import PatientColumns

BOOKING_STATUSES = ("held", "booked", "cancelled", "expired", "honored", "no_show")
# Statuses in which a booking occupies its slot; at most one per slot (partial unique index).
OCCUPYING = ("held", "booked", "honored", "no_show")


class Booking(IdMixin, CreatedAtMixin, PatientColumns, Base):
    __tablename__ = "booking"
    __table_args__ = (
        CheckConstraint(f"status IN {BOOKING_STATUSES}", name="status"),
        CheckConstraint('"end" > start', name="positive_length"),
        CheckConstraint("(status = 'held') = (hold_expires_at IS NOT NULL)", name="hold_expiry"),
        CheckConstraint("overbooked = (slot_id IS NULL)", name="overbooked_has_no_slot"),
        Index(
            "uq_booking_active_slot",
            "slot_id",
            unique=True,
            postgresql_where=text(f"status IN {OCCUPYING}"),
        ),
        Index("ix_booking_territory_start", "territory_id", "start"),
        Index("ix_booking_practitioner_start", "practitioner_id", "start"),
        Index("ix_booking_regulator_created", "regulator_id", "created_at"),
        Index("ix_booking_booked_by_practice", "booked_by_practice_id"),
    )

    slot_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("slot.id", ondelete="RESTRICT"))
    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioner.id", ondelete="RESTRICT")
    )
    practice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("practice.id", ondelete="RESTRICT"))
    territory_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("territory.id", ondelete="RESTRICT"))
    regulator_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("regulator.id", ondelete="RESTRICT")
    )
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # A CPTS-internal booking made by one of the CPTS's practices (None: by the SAS, or by
    # the coordinator): that practice sees it, cancels it and receives its webhooks.
    booked_by_practice_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("practice.id", ondelete="RESTRICT")
    )
    # The SAS platform account of the person who booked (sent to the platform).
    operator_account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("regulator_account.id", ondelete="RESTRICT")
    )
    status: Mapped[str] = mapped_column(String(12))
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    modality: Mapped[str] = mapped_column(String(20))
    overbooked: Mapped[bool] = mapped_column(Boolean, default=False)
    hold_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    booked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(String(300))
    outcome_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sas_case_ref: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(300))
    # Where a home visit (modality `visite`) takes place.
    visit_address: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()"), onupdate=text("now()")
    )


# The columns a booking's driver statements write and read (all but the database's own).
BOOKING_COLUMNS = [c.name for c in Booking.__table__.columns if c.name != "updated_at"]
