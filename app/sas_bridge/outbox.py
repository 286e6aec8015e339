"""The outbox's delivery: messages written in the transaction of the change they describe
(app.outbox) are delivered after commit by a dispatcher, with exponential backoff and
jitter, then a dead-letter state.

Several workers may dispatch at once: a message is claimed with FOR UPDATE SKIP LOCKED and a
lease, so it is sent by one of them; the HTTP call happens outside any transaction, so a slow
or dead receiver never holds a lock, a connection or a booking."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import (
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from app.clock import now_utc
from app.config import get_settings
from app.metrics import OUTBOX_DELIVERIES, OUTBOX_PENDING
from app.outbound_urls import COULD_NOT_CONNECT
from app.outbox.models import OutboxMessage, WebhookEndpoint

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
SIGNATURE_HEADER = "Creneau-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>`: receivers recompute it and
    refuse old timestamps, which defeats replays."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str
    event_id: uuid.UUID
    event_type: str
    payload: dict[str, Any]
    attempts: int
    url: str | None
    secret: str | None
    active: bool


async def _claim(factory: async_sessionmaker[AsyncSession], batch: int) -> list[Claimed]:
    async with factory() as session:
        now = now_utc()
        earlier = aliased(OutboxMessage)
        blocked = (
            select(earlier.id)
            .where(
                earlier.ordering_key == OutboxMessage.ordering_key,
                earlier.id < OutboxMessage.id,
                earlier.status != "delivered",
            )
            .exists()
        )
        due = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.status == "pending",
                OutboxMessage.next_attempt_at <= now,
                # In order per key: a PUT waits until its POST has been delivered.
                or_(OutboxMessage.ordering_key.is_(None), ~blocked),
            )
            .order_by(OutboxMessage.next_attempt_at)
            .limit(batch)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        ids = (
            await session.scalars(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(due))
                .values(next_attempt_at=now + LEASE)
                .returning(OutboxMessage.id)
            )
        ).all()
        rows = (
            await session.execute(
                select(OutboxMessage, WebhookEndpoint)
                .outerjoin(WebhookEndpoint, WebhookEndpoint.id == OutboxMessage.endpoint_id)
                .where(OutboxMessage.id.in_(ids))
                .order_by(OutboxMessage.id)
            )
        ).all()
        await session.commit()
    return [
        Claimed(
            m.id,
            m.kind,
            m.event_id,
            m.event_type,
            m.payload,
            m.attempts,
            e.url if e else None,
            e.secret if e else None,
            e.active if e else True,
        )
        for m, e in rows
    ]


async def _send_appointment(
    client: httpx.AsyncClient | None, message: Claimed
) -> tuple[int | None, str | None]:
    settings = get_settings()
    if client is None or settings.sas_platform_url is None:
        return None, "SAS_PLATFORM_URL is not set"
    resource = message.payload["resource"]
    body = json.dumps(resource, separators=(",", ":"), ensure_ascii=False).encode()
    base = settings.sas_platform_url.rstrip("/")
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    identifier = resource["identifier"][0]
    try:
        if message.payload["method"] == "POST":
            response = await client.post(f"{base}/Appointment", content=body, headers=headers)
        else:
            response = await client.put(
                f"{base}/Appointment",
                params={"identifier": f"{identifier['system']}|{identifier['value']}"},
                content=body,
                headers=headers,
            )
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}: {response.text[:200]}"


async def _send(client: httpx.AsyncClient, message: Claimed) -> tuple[int | None, str | None]:
    assert message.url is not None and message.secret is not None
    body = json.dumps(message.payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(message.secret, int(time.time()), body),
        "Creneau-Event-Id": str(message.event_id),
        "Creneau-Event-Type": message.event_type,
        "User-Agent": "Creneau-Webhooks/1",
    }
    try:
        response = await client.post(message.url, content=body, headers=headers)
    except httpx.HTTPError:
        # The same words whatever failed (refused address, closed port, something else than
        # HTTP listening, timeout): a recorded error must not map the network.
        return None, COULD_NOT_CONNECT
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


def backoff(attempts: int) -> timedelta:
    """Exponential, capped at an hour, with full jitter so that retries do not stampede."""
    settings = get_settings()
    ceiling = min(3600.0, settings.outbox_retry_base_seconds * 2 ** (attempts - 1))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


async def deliver_due(
    factory: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    *,
    platform: httpx.AsyncClient | None = None,
    batch: int = 50,
) -> dict[str, int]:
    """Send the messages that are due; record each outcome. Safe to run on every worker.
    `platform` is the (mutual-TLS) client for the national SAS platform."""
    claimed = await _claim(factory, batch)
    if not claimed:
        await _update_backlog(factory)
        return {"delivered": 0, "retried": 0, "failed": 0}

    async def send(message: Claimed) -> tuple[int | None, str | None]:
        if message.kind == "sas_appointment":
            return await _send_appointment(platform, message)
        return await (_send(client, message) if message.active else _inactive())

    # A batch never holds two messages of one ordering key (the claim skips a message while
    # an earlier one of its key is undelivered), so they can all go at once.
    results = await asyncio.gather(*(send(m) for m in claimed))
    settings = get_settings()
    counts = {"delivered": 0, "retried": 0, "failed": 0}
    async with factory() as session:
        now = now_utc()
        for message, (status_code, error) in zip(claimed, results, strict=True):
            attempts = message.attempts + 1
            values: dict[str, Any] = {"attempts": attempts, "last_status_code": status_code,
                                      "last_error": error}  # fmt: skip
            if error is None:
                values.update(status="delivered", delivered_at=now)
                outcome = "delivered"
            elif attempts >= settings.outbox_max_attempts:
                values.update(status="failed")
                outcome = "failed"
            else:
                values.update(next_attempt_at=now + backoff(attempts))
                outcome = "retried"
            counts[outcome] += 1
            OUTBOX_DELIVERIES.labels(message.kind, outcome).inc()
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == message.id).values(**values)
            )
        await session.commit()
    await _update_backlog(factory)
    if counts["failed"] or counts["retried"]:
        log.warning("outbox deliveries not acknowledged", extra=counts)
    return counts


async def _inactive() -> tuple[int | None, str | None]:
    return None, "endpoint disabled"


async def _update_backlog(factory: async_sessionmaker[AsyncSession]) -> None:
    async with factory() as session:
        rows = await session.execute(
            select(OutboxMessage.kind, OutboxMessage.status, func.count())
            .where(OutboxMessage.status.in_(("pending", "failed")))
            .group_by(OutboxMessage.kind, OutboxMessage.status)
        )
        counts = {(kind, status): count for kind, status, count in rows}
    for kind in ("webhook", "sas_appointment"):
        for status in ("pending", "failed"):
            OUTBOX_PENDING.labels(kind, status).set(counts.get((kind, status), 0))
