"""Idempotency-Key: a retried write returns the first response instead of acting twice.

Requests with the same key from the same API key are serialised by a transaction-level
advisory lock; the first successful response is stored in the same transaction as the change
it describes, so a replay can never disagree with the data. Errors are not stored: they
changed nothing, so a retry simply runs again."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Header
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel
from sqlalchemy import DateTime, Integer, String, delete, func, insert, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import Uuid
from starlette.responses import JSONResponse

from app.config import get_settings
from app.db import Base
from app.errors import ValidationFailed
from app.security import Caller


class IdempotencyRecord(Base):
    """The first response to a write sent with an Idempotency-Key, replayed for 24 h."""

    __tablename__ = "idempotency_record"

    api_key_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(200))
    body_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()"), index=True
    )


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Unique per logical request: a retry with the same key and body returns "
        "the first response; the same key with another body is a 422",
    ),
]


def _hash(endpoint: str, body: BaseModel) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{endpoint}\n{canonical}".encode()).hexdigest()


async def idempotent(
    session: AsyncSession,
    caller: Caller,
    key: str | None,
    endpoint: str,
    body: BaseModel,
    handler: Callable[[], Awaitable[BaseModel]],
    *,
    status_code: int = 201,
) -> JSONResponse:
    if not key:
        raise ValidationFailed.field(["header", "Idempotency-Key"], "required on this request")
    body_hash = _hash(endpoint, body)
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
        {"k": f"{caller.key_id}:{key}"},
    )
    ttl = timedelta(hours=get_settings().idempotency_ttl_hours)
    previous = await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == caller.key_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at > func.now() - ttl,
        )
    )
    if previous is not None:
        if previous.body_hash != body_hash:
            raise ValidationFailed.field(
                ["header", "Idempotency-Key"],
                "already used with a different request body",
            )
        return JSONResponse(
            previous.response,
            status_code=previous.status_code,
            headers={"Idempotent-Replayed": "true"},
        )
    result: dict[str, Any] = jsonable_encoder(await handler())
    # An expired record with the same key is replaced.
    await session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == caller.key_id, IdempotencyRecord.key == key
        )
    )
    await session.execute(
        insert(IdempotencyRecord).values(
            api_key_id=caller.key_id,
            key=key,
            endpoint=endpoint,
            body_hash=body_hash,
            status_code=status_code,
            response=result,
        )
    )
    return JSONResponse(result, status_code=status_code)


async def purge_expired(session: AsyncSession) -> dict[str, int]:
    """Job: forget idempotency records older than the TTL."""
    ttl = timedelta(hours=get_settings().idempotency_ttl_hours)
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at <= func.now() - ttl)
    )
    return {"purged": result.rowcount or 0}  # type: ignore[attr-defined]
