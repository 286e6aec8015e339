"""Appointment notifications to the SAS platform, for coordinators: see the dead letters and
send them again."""

from typing import Literal

from fastapi import APIRouter
from sqlalchemy import Select, select, update

from app.api.deps import CallerDep, SessionDep
from app.bounds import LogIdPath
from app.clock import now_utc
from app.errors import NotFound
from app.outbox.models import OutboxMessage
from app.sas_bridge.schemas import DeliveryOut
from app.security import ADMIN, COORDINATOR, Caller

router = APIRouter(prefix="/v1/sas-notifications", tags=["SAS platform"])


def _visible(caller: Caller) -> Select[OutboxMessage]:
    caller.require(ADMIN, COORDINATOR)
    stmt = select(OutboxMessage).where(OutboxMessage.kind == "sas_appointment")
    if caller.role == COORDINATOR:
        stmt = stmt.where(OutboxMessage.territory_id.in_(caller.territory_ids))
    return stmt


@router.get("", response_model=list[DeliveryOut])
async def list_notifications(
    session: SessionDep,
    caller: CallerDep,
    status: Literal["pending", "delivered", "failed"] | None = None,
) -> list[DeliveryOut]:
    """The latest 200 notifications of the territory's bookings (failed = dead-lettered)."""
    stmt = _visible(caller)
    if status is not None:
        stmt = stmt.where(OutboxMessage.status == status)
    rows = await session.scalars(stmt.order_by(OutboxMessage.id.desc()).limit(200))
    return [DeliveryOut.model_validate(m) for m in rows]


@router.post("/{notification_id}/retry", response_model=DeliveryOut)
async def retry_notification(
    notification_id: LogIdPath, session: SessionDep, caller: CallerDep
) -> DeliveryOut:
    """Send a failed notification again (attempts start over)."""
    visible = _visible(caller).where(OutboxMessage.id == notification_id).subquery()
    message = await session.scalar(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(select(visible.c.id)))
        .values(status="pending", attempts=0, next_attempt_at=now_utc(), last_error=None)
        .returning(OutboxMessage)
    )
    if message is None:
        raise NotFound("Notification not found")
    return DeliveryOut.model_validate(message)
