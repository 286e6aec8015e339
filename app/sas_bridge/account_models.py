"""Regulator accounts created and updated by the national SAS platform."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, CreatedAtMixin, IdMixin


class RegulatorAccount(IdMixin, CreatedAtMixin, Base):
    """A médecin régulateur or OSNP account of the SAS platform. There is no delete: an
    inactive account keeps its history but may no longer book."""

    __tablename__ = "regulator_account"
    __table_args__ = (
        CheckConstraint(
            "national_id IS NOT NULL OR technical_id IS NOT NULL", name="has_identifier"
        ),
    )

    # IDNPS under urn:oid:1.2.250.1.71.4.2.1 (e.g. 8 + RPPS), and the SAS technical UUID
    # (INTRN under urn:oid:1.2.250.1.213.3.6). An account may gain its national id later.
    national_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    technical_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    family_name: Mapped[str] = mapped_column(String(200))
    given_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()"), onupdate=text("now()")
    )
