"""Webhook endpoints of practices and SAS: registration, listing, deliveries, retries."""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import now_utc
from app.config import get_settings
from app.errors import NotFound
from app.outbound_urls import check_resolved_url
from app.outbox.models import OutboxMessage, WebhookEndpoint
from app.sas_bridge import schemas
from app.security import PRACTICE, REGULATOR, Caller


async def _check_url(url: str) -> None:
    await check_resolved_url(
        url, ["body", "url"], allow_insecure=get_settings().webhook_allow_insecure_urls
    )


def _owned(caller: Caller) -> Select[WebhookEndpoint]:
    caller.require(PRACTICE, REGULATOR)
    if caller.role == PRACTICE:
        return select(WebhookEndpoint).where(WebhookEndpoint.practice_id == caller.practice_id)
    owned = select(WebhookEndpoint).where(WebhookEndpoint.regulator_id == caller.regulator_id)
    if caller.territory_id is not None:  # a key scoped to one territory: its endpoints only
        owned = owned.where(WebhookEndpoint.territory_id == caller.territory_id)
    return owned


def render(endpoint: WebhookEndpoint) -> schemas.WebhookOut:
    return schemas.WebhookOut(
        id=endpoint.id,
        url=endpoint.url,
        events=endpoint.event_types,
        active=endpoint.active,
        practice_id=endpoint.practice_id,
        regulator_id=endpoint.regulator_id,
        created_at=endpoint.created_at,
    )


async def create(
    session: AsyncSession, caller: Caller, data: schemas.WebhookIn
) -> schemas.WebhookCreated:
    caller.require(PRACTICE, REGULATOR)
    url = str(data.url)
    await _check_url(url)
    endpoint = WebhookEndpoint(
        practice_id=caller.practice_id if caller.role == PRACTICE else None,
        regulator_id=caller.regulator_id if caller.role == REGULATOR else None,
        territory_id=caller.territory_id if caller.role == REGULATOR else None,
        url=url,
        secret=f"whsec_{secrets.token_urlsafe(32)}",
        event_types=sorted(set(data.events)),
        active=True,
        created_at=now_utc(),
    )
    session.add(endpoint)
    await session.flush()
    return schemas.WebhookCreated(**render(endpoint).model_dump(), secret=endpoint.secret)


async def list_endpoints(session: AsyncSession, caller: Caller) -> list[WebhookEndpoint]:
    rows = await session.scalars(_owned(caller).order_by(WebhookEndpoint.created_at))
    return list(rows.all())


async def get(session: AsyncSession, caller: Caller, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = await session.scalar(_owned(caller).where(WebhookEndpoint.id == endpoint_id))
    if endpoint is None:
        raise NotFound("Webhook endpoint not found")
    return endpoint


async def delete(session: AsyncSession, caller: Caller, endpoint_id: uuid.UUID) -> None:
    await session.delete(await get(session, caller, endpoint_id))
    await session.flush()


async def deliveries(
    session: AsyncSession, caller: Caller, endpoint_id: uuid.UUID, status: str | None
) -> list[OutboxMessage]:
    endpoint = await get(session, caller, endpoint_id)
    stmt = select(OutboxMessage).where(OutboxMessage.endpoint_id == endpoint.id)
    if status is not None:
        stmt = stmt.where(OutboxMessage.status == status)
    rows = await session.scalars(stmt.order_by(OutboxMessage.id.desc()).limit(200))
    return list(rows.all())


async def retry(
    session: AsyncSession, caller: Caller, endpoint_id: uuid.UUID, message_id: int
) -> OutboxMessage:
    """Send a dead-lettered delivery again (attempts start over)."""
    endpoint = await get(session, caller, endpoint_id)
    message: OutboxMessage | None = await session.scalar(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.endpoint_id == endpoint.id)
        .values(status="pending", attempts=0, next_attempt_at=now_utc(), last_error=None)
        .returning(OutboxMessage)
    )
    if message is None:
        raise NotFound("Delivery not found")
    return message
