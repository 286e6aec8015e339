import asyncio
import hmac
import ipaddress

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from app.config import Settings
from app.errors import Forbidden, ServiceUnavailable
from app.metrics import exposition

router = APIRouter(tags=["operations"])


@router.get("/health/live")
async def live() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/health/ready", responses={503: {"description": "Database unreachable"}})
async def ready(request: Request) -> dict[str, str]:
    """The database answers."""
    try:
        async with asyncio.timeout(3), request.app.state.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database means not ready
        raise ServiceUnavailable("The database is unreachable") from exc
    return {"status": "ok", "database": "ok"}


def _metrics_allowed(request: Request, settings: Settings) -> bool:
    """Open unless METRICS_ALLOWED_IPS or METRICS_TOKEN is set; then the client's address (as
    the TCP peer, or the TRUSTED_PROXIES' X-Forwarded-For) or the bearer token must match."""
    if not settings.metrics_allowed_ips and settings.metrics_token is None:
        return True
    if request.client is not None and settings.metrics_allowed_ips:
        try:
            address = ipaddress.ip_address(request.client.host)
        except ValueError:
            address = None
        if address is not None and any(address in net for net in settings.metrics_allowed_ips):
            return True
    if settings.metrics_token is not None:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        expected = settings.metrics_token.get_secret_value()
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), expected.encode()
        )
    return False


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    if not _metrics_allowed(request, request.app.state.settings):
        raise Forbidden("The metrics are open to the addresses and token the operator set")
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
