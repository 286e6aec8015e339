"""Crisis response: the territory's plan (versioned), the crises declared, the calls to the
plan's volunteers. Slots and rules opened for a crisis carry its id (`slot.crisis_id`,
`availability_rule.crisis_id`, app.scheduling.models)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import Uuid

from app.db import Base, IdMixin

# Épidémie, canicule, fermeture d'urgences, cyberattaque, autre.
CRISIS_KINDS = ("epidemic", "heatwave", "ed_closure", "cyber_attack", "other")
MAIL_STATUSES = ("pending", "sent", "failed", "none")


class CrisisPlan(IdMixin, Base):
    """One version of a territory's plan: immutable once written; a change is a new version.
    `document` is app.crisis.plan_schemas.PlanDocument as JSON (contacts, volunteers and
    their pledges, sites, steps)."""

    __tablename__ = "crisis_plan"
    __table_args__ = (
        UniqueConstraint("territory_id", "version", name="uq_crisis_plan_territory_version"),
        CheckConstraint("version >= 1", name="version"),
        CheckConstraint(f"review_mail_status IN {MAIL_STATUSES}", name="review_mail_status"),
    )

    territory_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("territory.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # The day the CPTS last reviewed the plan as a whole (a year later: a reminder).
    reviewed_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # The e-mail telling the territory's coordinators that this version's review is due:
    # NULL until it falls due, then `pending` (sent after commit by the job), `sent`,
    # `failed` or `none` (the territory has no coordinator address). Once per version.
    review_mail_status: Mapped[str | None] = mapped_column(String(10))


class Crisis(IdMixin, Base):
    """A crisis declared for a territory: at most one running (not ended) a territory."""

    __tablename__ = "crisis"
    __table_args__ = (
        CheckConstraint(f"kind IN {CRISIS_KINDS}", name="kind"),
        CheckConstraint("expected_end_at > started_at", name="expected_end"),
        CheckConstraint("ended_at IS NULL OR ended_at >= declared_at", name="ended"),
        Index(
            "uq_crisis_running_territory",
            "territory_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index("ix_crisis_territory_declared", "territory_id", "declared_at"),
    )

    territory_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("territory.id", ondelete="CASCADE"))
    # The plan version in force when it was declared (its volunteers are the ones called).
    plan_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("crisis_plan.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    # When the crisis starts (may precede the declaration) and is expected to end.
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expected_end_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Communes concerned (INSEE codes); empty: the whole territory.
    communes: Mapped[list[str]] = mapped_column(
        ARRAY(String(5)), server_default=text("'{}'::varchar[]")
    )
    declared_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    declared_by_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_by_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class CrisisCall(IdMixin, Base):
    """The call of one volunteer GP for one crisis: once (unique), by e-mail when the plan has
    an address and by the webhook `crisis.declared` to the practice. What the GP opened through
    its link, and the surnuméraire cap before the crisis raised it (restored at the end)."""

    __tablename__ = "crisis_call"
    __table_args__ = (
        UniqueConstraint("crisis_id", "practitioner_id", name="uq_crisis_call_crisis_practitioner"),
        CheckConstraint(f"mail_status IN {MAIL_STATUSES}", name="mail_status"),
        CheckConstraint("slots_opened >= 0", name="slots_opened"),
    )

    crisis_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("crisis.id", ondelete="CASCADE"))
    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioner.id", ondelete="CASCADE")
    )
    practice_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    email: Mapped[str | None] = mapped_column(String(254))
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    mail_status: Mapped[str] = mapped_column(String(10), server_default=text("'pending'"))
    # When the GP opened its pledged capacity through the link, and how many slots it made.
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    slots_opened: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # The surnuméraire cap before the crisis raised it (NULL: not raised), and whether the GP
    # accepted surnuméraires then (both restored when the crisis ends).
    cap_before: Mapped[int | None] = mapped_column(Integer)
    accepted_overbooking_before: Mapped[bool | None] = mapped_column(Boolean)
