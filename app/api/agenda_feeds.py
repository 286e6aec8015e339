"""A practitioner's agenda feed: the practice's own software publishes, Créneau follows."""

import uuid
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response, status

from app.api.deps import CallerDep, SessionDep
from app.sas_bridge import feed_import, feeds, schemas
from app.sas_bridge.feed_models import AgendaFeed, AgendaImport
from app.scheduling.schemas import MaterializationOut

router = APIRouter(prefix="/v1/practitioners/{practitioner_id}/agenda-feed", tags=["agenda feeds"])


def _feed_out(feed: AgendaFeed, tz: ZoneInfo) -> schemas.FeedOut:
    out = schemas.FeedOut.model_validate(feed)
    for name in ("last_attempt_at", "last_success_at", "next_fetch_at"):
        value = getattr(out, name)
        if value is not None:
            setattr(out, name, value.astimezone(tz))
    return out


def _import_out(entry: AgendaImport, tz: ZoneInfo) -> schemas.ImportOut:
    out = schemas.ImportOut.model_validate(entry)
    out.started_at, out.finished_at = out.started_at.astimezone(tz), out.finished_at.astimezone(tz)
    return out


@router.put(
    "",
    response_model=schemas.FeedOut,
    responses={201: {"model": schemas.FeedOut, "description": "Feed created"}},
)
async def set_feed(
    practitioner_id: uuid.UUID,
    body: schemas.FeedIn,
    session: SessionDep,
    caller: CallerDep,
    response: Response,
) -> schemas.FeedOut:
    """Give the practitioner a feed (201), or change it (200). It is read at the next run of
    the import job, within a minute, or at once with `POST .../agenda-feed/import`."""
    feed, created = await feeds.set_feed(session, caller, practitioner_id, body)
    _, tz = await feeds.get_feed(session, caller, practitioner_id)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return _feed_out(feed, tz)


@router.get("", response_model=schemas.FeedOut)
async def get_feed(
    practitioner_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> schemas.FeedOut:
    """The feed and how its last import went (`last_status`, `last_error`)."""
    feed, tz = await feeds.get_feed(session, caller, practitioner_id)
    return _feed_out(feed, tz)


@router.delete("", response_model=MaterializationOut)
async def delete_feed(
    practitioner_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> MaterializationOut:
    """Stop following the feed; its future free slots go, held and booked ones stay."""
    return await feeds.delete_feed(session, caller, practitioner_id)


@router.post("/import", response_model=schemas.ImportOut)
async def import_now(
    practitioner_id: uuid.UUID, request: Request, session: SessionDep, caller: CallerDep
) -> schemas.ImportOut:
    """Fetch and apply the feed now. A feed that cannot be read gives an import with
    `status: failed` and its `reason` (the request itself succeeds): nothing changed. Events
    that cannot be slots are listed in `skipped` and the rest applied (`status: partial`)."""
    feed, tz = await feeds.get_feed(session, caller, practitioner_id)
    # The import owns its transactions; the fetch must not hold this request's one open.
    await session.commit()
    entry = await feed_import.run_import(
        request.app.state.sessionmaker, request.app.state.feed_http, feed.id
    )
    return _import_out(entry, tz)


@router.get("/imports", response_model=list[schemas.ImportOut])
async def list_imports(
    practitioner_id: uuid.UUID,
    session: SessionDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=feeds.IMPORTS_KEPT)] = 20,
) -> list[schemas.ImportOut]:
    """The last imports, newest first (the last 50 are kept), each with the events it
    skipped and its conflicts."""
    entries, tz = await feeds.list_imports(session, caller, practitioner_id, limit)
    return [_import_out(e, tz) for e in entries]
