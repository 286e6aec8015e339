"""Territories (CPTS), SAS regulators and the platform's regulator accounts, practices,
practitioners and API keys."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import Uuid

from app.db import Base, CreatedAtMixin, IdMixin

ROLES = ("admin", "coordinator", "practice", "regulator", "dashboard", "sas_platform")
PROFESSIONS = ("general_practitioner", "pediatrician", "nurse", "midwife", "other")

regulator_territory = Table(
    "regulator_territory",
    Base.metadata,
    Column(
        "regulator_id",
        Uuid,
        ForeignKey("regulator.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "territory_id",
        Uuid,
        ForeignKey("territory.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)


class Territory(IdMixin, CreatedAtMixin, Base):
    """A CPTS territory; its IANA zone rules every wall-clock time inside it."""

    __tablename__ = "territory"
    __table_args__ = (
        CheckConstraint("snp_window_hours BETWEEN 1 AND 720", name="snp_window_hours"),
    )

    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(3))
    population: Mapped[int | None] = mapped_column(Integer)
    # The signature date of the territory's ACI contract: its anniversary starts each
    # indicator year (calendar years when unknown).
    aci_signed_on: Mapped[date | None] = mapped_column(Date)
    finess: Mapped[str | None] = mapped_column(String(9))
    phone: Mapped[str | None] = mapped_column(String(32))
    # How far ahead a surnuméraire may be booked (the SNP mission: within 48 hours).
    snp_window_hours: Mapped[int] = mapped_column(Integer, default=48, server_default="48")
    # Where the service writes to the territory's coordinators (the crisis plan's review).
    coordinator_emails: Mapped[list[str]] = mapped_column(
        ARRAY(String(254)), default=list, server_default=text("'{}'::varchar[]")
    )


class Regulator(IdMixin, CreatedAtMixin, Base):
    """A SAS (departmental regulation) that may serve several territories."""

    __tablename__ = "regulator"

    name: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(3))


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


class Practice(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "practice"
    __table_args__ = (
        CheckConstraint("lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180", name="coordinates"),
        Index("ix_practice_lat_lon", "lat", "lon"),
    )

    territory_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("territory.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300))
    commune_insee: Mapped[str] = mapped_column(String(5), index=True)
    lat: Mapped[float] = mapped_column(Double)
    lon: Mapped[float] = mapped_column(Double)
    finess: Mapped[str | None] = mapped_column(String(9))
    postal_code: Mapped[str | None] = mapped_column(String(5))
    city: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    siret: Mapped[str | None] = mapped_column(String(14))
    # RPPS rang (`4`…) or ADELI rang (`0`…) with its prefix: a private practice's structure id
    cabinet_id: Mapped[str | None] = mapped_column(String(20))
    booking_url: Mapped[str | None] = mapped_column(String(500))  # its own public booking page


class Practitioner(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "practitioner"
    __table_args__ = (
        UniqueConstraint("territory_id", "rpps", name="uq_practitioner_territory_rpps"),
        # The target of slots' (practitioner_id, territory_id) foreign key.
        UniqueConstraint("id", "territory_id", name="uq_practitioner_id_territory"),
        CheckConstraint("rpps ~ '^[0-9]{11}$'", name="rpps_format"),
        CheckConstraint("overbooking_daily_cap >= 0", name="overbooking_cap"),
        CheckConstraint("mt_capacity >= 0", name="mt_capacity"),
        CheckConstraint(
            "overbooking_modalities <@ ARRAY['cabinet', 'visite', 'teleconsultation']::varchar[]",
            name="overbooking_modalities",
        ),
    )

    practice_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practice.id", ondelete="RESTRICT"), index=True
    )
    # Denormalised from the practice so that RPPS uniqueness per territory is a constraint.
    territory_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("territory.id", ondelete="RESTRICT"), index=True
    )
    rpps: Mapped[str] = mapped_column(String(11), index=True)
    family_name: Mapped[str] = mapped_column(String(200))
    given_name: Mapped[str] = mapped_column(String(200))
    gender: Mapped[str | None] = mapped_column(String(16))
    profession: Mapped[str] = mapped_column(String(40), default="general_practitioner")
    specialty: Mapped[str | None] = mapped_column(String(100))
    accepts_overbooking: Mapped[bool] = mapped_column(Boolean, default=False)
    overbooking_daily_cap: Mapped[int] = mapped_column(Integer, default=0)
    # Surnuméraire hours, local wall-clock time (an end at or before the start: the next day).
    overbooking_start_time: Mapped[time] = mapped_column(
        Time, default=time(8), server_default="08:00"
    )
    overbooking_end_time: Mapped[time] = mapped_column(
        Time, default=time(20), server_default="20:00"
    )
    # The modalities accepted as surnuméraire; NULL: those of the practitioner's rules.
    overbooking_modalities: Mapped[list[str] | None] = mapped_column(ARRAY(String(20)))
    mt_capacity: Mapped[int] = mapped_column(Integer, default=0)


class ApiKey(IdMixin, CreatedAtMixin, Base):
    """An API key; only its SHA-256 digest is stored, the secret is shown once."""

    __tablename__ = "api_key"
    __table_args__ = (
        CheckConstraint(
            "role IN ('admin','coordinator','practice','regulator','dashboard','sas_platform')",
            name="role",
        ),
    )

    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    prefix: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    territory_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("territory.id", ondelete="CASCADE"), index=True
    )
    practice_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("practice.id", ondelete="CASCADE"), index=True
    )
    regulator_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("regulator.id", ondelete="CASCADE"), index=True
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EndedWebSession(Base):
    """A key-page session ended by its sign-out: its cookie (signed, so otherwise valid until it
    expires) is refused from then on, and so is its CSRF token. Kept until the cookie would
    have expired anyway."""

    __tablename__ = "ended_web_session"

    # SHA-256 of the session's nonce (the cookie's secret part is never stored).
    nonce_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("api_key.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class CommuneRecord(Base):
    """A French commune of the referential (app/directory/data: INSEE's COG and La Poste's
    postal codes, loaded by app/directory/communes_load.py). Not tied to any territory."""

    __tablename__ = "commune"
    __table_args__ = (
        # Prefix search on the folded name (app/directory/communes.py: name_key).
        Index("ix_commune_name_key", "name_key", postgresql_ops={"name_key": "text_pattern_ops"}),
        Index("ix_commune_postal_codes", "postal_codes", postgresql_using="gin"),
    )

    insee: Mapped[str] = mapped_column(String(5), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    name_key: Mapped[str] = mapped_column(String(100))
    departement: Mapped[str] = mapped_column(String(3))
    postal_codes: Mapped[list[str]] = mapped_column(ARRAY(String(5)))
    population: Mapped[int | None] = mapped_column(Integer)
