"""Who read which patient record: an append-only access log, kept apart from the activity log
(it names records, so it is not for funders), readable by the territory's coordinator."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, String, insert, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import Uuid

from app.db import Base
from app.security import Caller


class PatientAccess(Base):
    __tablename__ = "patient_access"
    __table_args__ = (Index("ix_patient_access_territory_at", "territory_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))
    api_key_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    role: Mapped[str] = mapped_column(String(20))
    record_type: Mapped[str] = mapped_column(String(20))  # booking | mt_request
    record_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    territory_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("territory.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(20))  # read | list | export


async def log_access(
    session: AsyncSession,
    caller: Caller,
    record_type: str,
    records: Iterable[tuple[uuid.UUID, uuid.UUID]],
    action: str,
) -> None:
    """`records`: (record id, territory id) of every record shown with patient data."""
    rows = [
        {"api_key_id": caller.key_id, "role": caller.role, "record_type": record_type,
         "record_id": record_id, "territory_id": territory_id, "action": action}
        for record_id, territory_id in records
    ]  # fmt: skip
    if rows:
        await session.execute(insert(PatientAccess), rows)


class ShownRecord(Protocol):
    """A booking or MT request as rendered: its patient is None when the reader may not see it."""

    id: uuid.UUID
    territory_id: uuid.UUID
    patient: Any


async def log_shown(
    session: AsyncSession,
    caller: Caller,
    record_type: str,
    items: Iterable[ShownRecord],
    action: str,
) -> None:
    """Log every rendered record that is shown with its patient (API and pages alike)."""
    await log_access(
        session,
        caller,
        record_type,
        [(item.id, item.territory_id) for item in items if item.patient is not None],
        action,
    )
