"""Agenda feeds: a practitioner's slots kept in step with the practice's own software
(an iCalendar URL or a FHIR Slot search URL), and the record of every import."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, CreatedAtMixin, IdMixin
from app.scheduling.models import MODALITIES, VISIBILITIES

FEED_FORMATS = ("ical", "fhir")
FEED_STATUSES = ("pending", "ok", "partial", "not_modified", "failed")
# partial: the feed was read and applied, but some of its events could not be slots.
IMPORT_STATUSES = ("ok", "partial", "not_modified", "failed")


class AgendaFeed(IdMixin, CreatedAtMixin, Base):
    """One feed per practitioner. Its slots are the practitioner's `source = 'import'` slots."""

    __tablename__ = "agenda_feed"
    __table_args__ = (
        CheckConstraint(f"format IN {FEED_FORMATS}", name="format"),
        CheckConstraint(f"modality IN {MODALITIES}", name="modality"),
        CheckConstraint(f"visibility IN {VISIBILITIES}", name="visibility"),
        CheckConstraint(f"last_status IN {FEED_STATUSES}", name="last_status"),
        CheckConstraint(
            "slot_minutes IS NULL OR slot_minutes BETWEEN 5 AND 720", name="slot_minutes"
        ),
        Index("ix_agenda_feed_due", "next_fetch_at", postgresql_where=text("active")),
    )

    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioner.id", ondelete="CASCADE"), unique=True
    )
    territory_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("territory.id", ondelete="CASCADE"))
    format: Mapped[str] = mapped_column(String(10))
    url: Mapped[str] = mapped_column(String(2000))
    # iCalendar events in this category (or marked free, TRANSP:TRANSPARENT) are slots.
    category: Mapped[str] = mapped_column(String(100))
    modality: Mapped[str] = mapped_column(String(20))
    visibility: Mapped[str] = mapped_column(String(10))
    # Events longer than one slot are cut into slots of this length (None: one slot each).
    slot_minutes: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # HTTP validators and a digest of the last body, so an unchanged feed costs nothing.
    etag: Mapped[str | None] = mapped_column(String(300))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    next_fetch_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_status: Mapped[str] = mapped_column(String(15), default="pending")
    last_error: Mapped[str | None] = mapped_column(String(500))
    # Events of the last import read that could not be slots (listed on that import).
    last_skipped: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()"), onupdate=text("now()")
    )


class AgendaImport(IdMixin, Base):
    """One fetch of a feed and what it changed; a failed one changed nothing."""

    __tablename__ = "agenda_import"
    __table_args__ = (
        CheckConstraint(f"status IN {IMPORT_STATUSES}", name="status"),
        Index("ix_agenda_import_feed_started", "feed_id", "started_at"),
    )

    feed_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agenda_feed.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(15))
    reason: Mapped[str | None] = mapped_column(String(500))
    bytes: Mapped[int] = mapped_column(Integer, default=0)
    slots_in_feed: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    # [{"kind", "start", "end", "reason", "slot_id"?, "uid"?, "with_uid"?}]:
    # kind "kept": a booked or held slot the feed no longer has (slot_id: that slot);
    # kind "not_imported": a feed slot overlapping a slot published otherwise (slot_id: that
    # slot) or another event of the same feed (with_uid: that event); uid: the feed's event.
    conflicts: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    # [{"uid", "start", "reason", "occurrences"}]: events of the feed that could not be slots.
    skipped: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    # How many events were skipped (all of them; `skipped` lists the first 200).
    skipped_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The text encoding the feed was read with, and whether it was declared or guessed.
    encoding: Mapped[str | None] = mapped_column(String(100))
