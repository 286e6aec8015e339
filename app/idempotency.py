"""Idempotency-Key: a retried write returns the first response instead of acting twice.

Requests with the same key from the same API key are serialised by the record itself, claimed
(inserted) before the write runs; the first successful response is stored in the same
transaction as the change it describes, so a replay can never disagree with the data. Errors
are not stored: they changed nothing, so a retry simply runs again."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import Header
from pydantic import BaseModel
from sqlalchemy import DateTime, Integer, String, delete, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import Uuid
from starlette.responses import Response

from app.config import get_settings
from app.db import Base, driver_connection
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


# The claim inserts the record before the write runs. A concurrent request with the same key
# waits on the uncommitted row until the first one commits (then it replays) or rolls back
# (then it claims the key itself). An expired record is taken over in the same statement, and
# so is one committed without its response (status 0: a caller that caught the write's error
# and committed anyway), which must not be replayed.
_CLAIM = """
INSERT INTO idempotency_record AS r
    (api_key_id, key, endpoint, body_hash, status_code, response, created_at)
VALUES ($1, $2, $3, $4, 0, 'null', now())
ON CONFLICT (api_key_id, key) DO UPDATE
    SET endpoint = EXCLUDED.endpoint, body_hash = EXCLUDED.body_hash, status_code = 0,
        response = 'null', created_at = now()
    WHERE r.created_at <= now() - $5::interval OR r.status_code = 0
RETURNING true
"""
_PREVIOUS = """
SELECT body_hash, status_code, response FROM idempotency_record
WHERE api_key_id = $1 AND key = $2
"""
_STORE = """
UPDATE idempotency_record SET status_code = $3, response = $4
WHERE api_key_id = $1 AND key = $2
"""


async def idempotent(
    session: AsyncSession,
    caller: Caller,
    key: str | None,
    endpoint: str,
    body: BaseModel,
    handler: Callable[[], Awaitable[BaseModel]],
    *,
    status_code: int = 201,
) -> Response:
    if not key:
        raise ValidationFailed.field(["header", "Idempotency-Key"], "required on this request")
    body_hash = _hash(endpoint, body)
    ttl = timedelta(hours=get_settings().idempotency_ttl_hours)
    conn = await driver_connection(session)
    claimed = await conn.fetchval(_CLAIM, caller.key_id, key, endpoint, body_hash, ttl)
    if not claimed:
        previous = await conn.fetchrow(_PREVIOUS, caller.key_id, key)
        assert previous is not None
        if previous["body_hash"] != body_hash:
            raise ValidationFailed.field(
                ["header", "Idempotency-Key"],
                "already used with a different request body",
            )
        return JsonBytesResponse(
            orjson.dumps(previous["response"]),
            status_code=previous["status_code"],
            headers={"Idempotent-Replayed": "true"},
        )
    content = orjson.dumps((await handler()).model_dump(mode="json"))
    # The record is stored in the write's transaction: a replay never disagrees with the data.
    await conn.execute(_STORE, caller.key_id, key, status_code, content.decode())
    return JsonBytesResponse(content, status_code=status_code)


class JsonBytesResponse(Response):
    """JSON already encoded."""

    media_type = "application/json"


async def purge_expired(session: AsyncSession) -> dict[str, int]:
    """Job: forget idempotency records older than the TTL."""
    ttl = timedelta(hours=get_settings().idempotency_ttl_hours)
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at <= func.now() - ttl)
    )
    return {"purged": result.rowcount or 0}  # type: ignore[attr-defined]
