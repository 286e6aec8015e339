"""Patients looking for a médecin traitant, and the GPs proposed to them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import Uuid

from app.db import Base, IdMixin
from app.patient_data import PatientColumns

MT_STATUSES = ("waiting", "proposed", "attached", "withdrawn")
# `self`: the patient (or someone on their behalf) on the public page /medecin-traitant.
MT_SOURCES = ("assurance_maladie", "hotline", "sas", "practice", "cpts", "other", "self")
_OPEN = "status <> 'withdrawn'"


class MtRequest(IdMixin, PatientColumns, Base):
    __tablename__ = "mt_request"
    __table_args__ = (
        CheckConstraint(f"status IN {MT_STATUSES}", name="status"),
        CheckConstraint(f"source IN {MT_SOURCES}", name="source"),
        CheckConstraint(
            "(status = 'proposed') = (proposed_practitioner_id IS NOT NULL)", name="proposal"
        ),
        CheckConstraint(
            "(status = 'attached') = (attached_practitioner_id IS NOT NULL)", name="attachment"
        ),
        # A patient is registered once per territory while their request is open.
        Index(
            "uq_mt_request_open_ins",
            "territory_id",
            "patient_ins",
            unique=True,
            postgresql_where=text(f"{_OPEN} AND patient_ins IS NOT NULL"),
        ),
        Index(
            "uq_mt_request_open_identity",
            "territory_id",
            func.lower(text("patient_family_name")),
            func.lower(text("patient_given_name")),
            "patient_birth_date",
            "patient_phone",
            unique=True,
            postgresql_where=text(_OPEN),
        ),
        Index("uq_mt_request_reference", "reference", unique=True),
        Index(
            "ix_mt_request_self_day",
            "territory_id",
            "registered_at",
            postgresql_where=text("source = 'self'"),
        ),
        Index("ix_mt_request_territory_status", "territory_id", "status", "registered_at"),
        Index(
            "ix_mt_request_attached",
            "attached_practitioner_id",
            postgresql_where=text("status = 'attached'"),
        ),
    )

    territory_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("territory.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(12))
    source: Mapped[str] = mapped_column(String(20))
    ald: Mapped[bool] = mapped_column(Boolean)
    precarity: Mapped[bool] = mapped_column(Boolean)
    # Declared by the patient (public page): ALD and precarity count for priority only once the
    # coordinator has confirmed them.
    criteria_to_check: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    # What the patient quotes, with their birth date, to see where they stand.
    reference: Mapped[str | None] = mapped_column(String(12))
    contact_email: Mapped[str | None] = mapped_column(String(320))
    consent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Waiting time counts from here, whatever happens to proposals.
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    preferred_communes: Mapped[list[str]] = mapped_column(ARRAY(String(5)), default=list)
    preferred_gender: Mapped[str | None] = mapped_column(String(10))
    proposed_practitioner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("practitioner.id", ondelete="RESTRICT")
    )
    proposed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    proposal_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attached_practitioner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("practitioner.id", ondelete="RESTRICT")
    )
    attached_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    withdraw_reason: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()"), onupdate=text("now()")
    )


PROPOSAL_OUTCOMES = ("pending", "accepted", "declined", "lapsed", "withdrawn")
DECLINED_BY = ("patient", "practitioner")
# Why a proposal was declined, as the figures count it (the free-text reason stays with the
# request and is erased with the patient's data): too far or out of the GP's area, hours or
# delays, the patient prefers another GP, the GP's list is full, anything else.
DECLINE_REASONS = ("distance", "schedule", "preference", "capacity", "other")


class MtProposal(IdMixin, Base):
    """One GP proposed to one request, and how it ended: the request's whole story."""

    __tablename__ = "mt_proposal"
    __table_args__ = (
        CheckConstraint(f"outcome IN {PROPOSAL_OUTCOMES}", name="outcome"),
        CheckConstraint(
            "declined_by IS NULL OR (outcome = 'declined' "
            "AND declined_by IN ('patient', 'practitioner'))",
            name="declined_by",
        ),
        CheckConstraint(
            f"reason_code IS NULL OR (outcome = 'declined' AND reason_code IN {DECLINE_REASONS})",
            name="reason_code",
        ),
        Index("ix_mt_proposal_request", "request_id", "proposed_at"),
        # At most one proposal awaits an answer, as the request has one proposed GP.
        Index(
            "uq_mt_proposal_pending",
            "request_id",
            unique=True,
            postgresql_where=text("outcome = 'pending'"),
        ),
    )

    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("mt_request.id", ondelete="CASCADE"))
    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioner.id", ondelete="RESTRICT")
    )
    proposed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(10))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    declined_by: Mapped[str | None] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(300))
    reason_code: Mapped[str | None] = mapped_column(String(20))
