import asyncio

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from app.errors import ServiceUnavailable
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


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
