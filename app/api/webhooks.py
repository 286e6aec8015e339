"""Webhook endpoints: practices and SAS are told of their bookings' changes."""

import uuid
from typing import Literal

from fastapi import APIRouter, Response

from app.api.deps import CallerDep, SessionDep
from app.bounds import LogIdPath
from app.sas_bridge import schemas, webhooks

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


@router.post("", status_code=201, response_model=schemas.WebhookCreated)
async def create_webhook(
    body: schemas.WebhookIn, session: SessionDep, caller: CallerDep
) -> schemas.WebhookCreated:
    """Register an endpoint (practice or regulator key). Each delivery is a JSON POST signed
    with `Creneau-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`,
    retried with exponential backoff until a 2xx answer, then dead-lettered."""
    return await webhooks.create(session, caller, body)


@router.get("", response_model=list[schemas.WebhookOut])
async def list_webhooks(session: SessionDep, caller: CallerDep) -> list[schemas.WebhookOut]:
    return [webhooks.render(e) for e in await webhooks.list_endpoints(session, caller)]


@router.delete("/{endpoint_id}", status_code=204)
async def delete_webhook(
    endpoint_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> Response:
    await webhooks.delete(session, caller, endpoint_id)
    return Response(status_code=204)


@router.get("/{endpoint_id}/deliveries", response_model=list[schemas.DeliveryOut])
async def list_deliveries(
    endpoint_id: uuid.UUID,
    session: SessionDep,
    caller: CallerDep,
    status: Literal["pending", "delivered", "failed"] | None = None,
) -> list[schemas.DeliveryOut]:
    """The latest 200 deliveries: pending, delivered or failed (dead-lettered)."""
    rows = await webhooks.deliveries(session, caller, endpoint_id, status)
    return [schemas.DeliveryOut.model_validate(m) for m in rows]


@router.post("/{endpoint_id}/deliveries/{delivery_id}/retry", response_model=schemas.DeliveryOut)
async def retry_delivery(
    endpoint_id: uuid.UUID, delivery_id: LogIdPath, session: SessionDep, caller: CallerDep
) -> schemas.DeliveryOut:
    """Send a failed delivery again."""
    message = await webhooks.retry(session, caller, endpoint_id, delivery_id)
    return schemas.DeliveryOut.model_validate(message)
