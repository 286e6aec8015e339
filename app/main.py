"""create_app(): routers, error handlers, middleware and the lifespan."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from sqlalchemy.ext.asyncio import AsyncEngine

from app.api import (
    agenda_feeds,
    availability,
    bookings,
    crises,
    crisis_plans,
    crisis_reports,
    fhir,
    health,
    indicators,
    keys,
    mt_requests,
    practices,
    practitioners,
    regulator_accounts,
    regulators,
    sas_notifications,
    slot_calls,
    slots,
    territories,
    unmet_requests,
    webhooks,
)
from app.api_docs import install_api_docs
from app.caller_cache import CallerCache, listen
from app.config import Settings, get_settings
from app.db import make_engine, make_sessionmaker, resolve_database_url
from app.directory.communes_load import ensure_loaded
from app.errors import PROBLEM_JSON, PROBLEM_RESPONSES, install_error_handlers
from app.jobs import build_scheduler
from app.logging_setup import configure_logging
from app.metrics import worker_stopped
from app.middleware import EdgeMiddleware
from app.migrate import upgrade_to_head
from app.outbound_urls import guarded_client
from app.rate_limit import RateLimiter
from app.sas_bridge.appointments import notify as notify_platform
from app.sas_bridge.feed_fetch import feed_client
from app.sas_bridge.fhir_errors import FHIR_ERRORS, FHIR_JSON
from app.sas_bridge.platform_client import platform_client
from app.scheduling.booking_events import tell_platform_with
from app.web import (
    agenda_pages,
    auth,
    booking_pages,
    call_link_pages,
    call_opt_in_pages,
    coordinator_directory_pages,
    coordinator_pages,
    cpts_pages,
    crisis_link_pages,
    crisis_pages,
    crisis_plan_pages,
    crisis_report_pages,
    directory_pages,
    gap_pages,
    mt_import_pages,
    outreach_pages,
    overbook_pages,
    pages,
    practice_mt_pages,
    practice_pages,
    practice_rule_pages,
    practice_slot_pages,
    pro_sante_connect,
    regulator_pages,
    slot_call_pages,
    unmet_pages,
)
from app.web.error_pages import WEB_ERRORS

log = logging.getLogger(__name__)

DESCRIPTION = """
Créneau turns the shared agendas of a CPTS's GPs into bookable unscheduled-care (SNP) slots,
lets SAS regulators search and book them, runs the médecin traitant queue and logs every step
for the CPTS's indicators.

Authenticate with `Authorization: Bearer <api key>`; the national SAS platform may instead present
its IGC-Santé client certificate (mutual TLS). Errors are RFC 9457 `application/problem+json`.
"""


_gc_tuned = False
# Allocations (less deallocations) of tracked objects between two young collections. The
# default, 700, is crossed several times by any request that holds a few thousand objects at
# once (a guide search holds ~5,000 for its 600 slots), promoting them to older generations
# and triggering full collections; those objects are mostly freed by reference counting
# before 20,000 is reached, so the collector rarely runs at all.
GC_YOUNG_THRESHOLD = 20_000


def _tune_garbage_collector() -> None:
    """Once per process: moves the objects made at start-up (modules, models, validators,
    routes: about 190,000) out of the garbage collector's reach, and raises its young
    threshold. A full collection otherwise walks them all, some slowly (pydantic-core
    validators), which took 300 ms on the development machine in the middle of whichever
    requests were running; young collections cost a guide search ~7 ms on average."""
    global _gc_tuned
    if not _gc_tuned:
        _gc_tuned = True
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine = None
    if getattr(app.state, "sessionmaker", None) is None:
        url = resolve_database_url(settings)
        await asyncio.to_thread(upgrade_to_head, url)
        engine = make_engine(url, settings)
        app.state.sessionmaker = make_sessionmaker(engine)
        async with app.state.sessionmaker() as session:  # a new database: its communes
            await ensure_loaded(session)
            await session.commit()
    # Webhook URLs are the clients': every connection goes through the outbound guard.
    app.state.http = guarded_client(
        lambda: get_settings().webhook_allow_insecure_urls,
        timeout=httpx.Timeout(settings.webhook_timeout_seconds),
        follow_redirects=False,
    )
    app.state.platform_http = platform_client(settings)
    app.state.feed_http = feed_client()
    listener = _listen_for_callers(app)
    scheduler = None
    if settings.scheduler_enabled:
        scheduler = build_scheduler(
            app.state.sessionmaker,
            app.state.http,
            app.state.platform_http,
            feed_http=app.state.feed_http,
        )
        scheduler.start()
        for job in scheduler.get_jobs():
            job.modify(next_run_time=datetime.now(UTC))
    _prepare_routes(app)
    _tune_garbage_collector()  # after the routes' validators are built: they are frozen too
    log.info("creneau started")
    try:
        yield
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        if listener is not None:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        await app.state.http.aclose()
        await app.state.feed_http.aclose()
        if app.state.platform_http is not None:
            await app.state.platform_http.aclose()
        if engine is not None:
            await engine.dispose()
        worker_stopped()


def _listen_for_callers(app: FastAPI) -> asyncio.Task[None] | None:
    """The caller cache's LISTEN connection, on the app's own database. A sessionmaker bound
    to one connection (the tests' rolled-back transaction) gets none, so the cache stays off:
    changes made there are never committed, never notified."""
    cache: CallerCache = app.state.caller_cache
    bind = app.state.sessionmaker.kw.get("bind")
    if not cache.enabled or not isinstance(bind, AsyncEngine):
        return None
    dsn = bind.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return asyncio.create_task(listen(cache, dsn))


def _prepare_routes(app: FastAPI) -> None:
    """FastAPI builds an included router's routes (their dependencies and validators) when a
    request first walks them: about a second on the first request of a new worker. Walk them
    all here, with a path no route matches, so the first caller does not wait for it."""
    scope = {"type": "http", "method": "GET", "path": "/\x00", "root_path": "", "headers": []}
    for route in app.router.routes:
        route.matches(scope)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated schema, with error responses declared as application/problem+json only
    (FastAPI would also list application/json for them)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for name, path in schema.get("paths", {}).items():
            for operation in path.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    # FHIR answers are fhir+json; the SMART manifest is plain JSON.
                    if (
                        name.startswith("/fhir")
                        and name != "/fhir/$bulk-publish"
                        and status[0] == "2"
                    ):
                        kind = "application/fhir+ndjson" if name.endswith(".ndjson") else FHIR_JSON
                        response["content"] = {kind: {"schema": {"type": "object"}}}
                        continue
                    if status[0] not in "45" or PROBLEM_JSON not in content:
                        continue
                    if name.startswith("/fhir"):  # FHIR errors are OperationOutcomes
                        response["content"] = {FHIR_JSON: {"schema": {"type": "object"}}}
                    else:
                        content.pop("application/json", None)
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    app = FastAPI(
        title="Créneau",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=PROBLEM_RESPONSES,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.sessionmaker = None
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    app.state.caller_cache = CallerCache(settings.caller_cache_seconds)
    # Requests for e-mailed sign-in links, per client address (each also limited per account).
    app.state.sign_in_limiter = RateLimiter(10, burst=20)
    app.state.psc = pro_sante_connect.client(settings)
    # The errors' other forms, tried in this order before problem+json: an OperationOutcome
    # under /fhir, a French page for the pages (and a browser lost outside the API).
    install_error_handlers(app, (FHIR_ERRORS, WEB_ERRORS))
    # The booking domain tells the national platform through the SAS adapter.
    tell_platform_with(notify_platform)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    # FastAPI tries the routers in this order on every request, walking each one's routes:
    # the busiest (searches, bookings, agendas and publications, the platform's FHIR) come
    # first. No path of one router is also a path of another, so the order changes nothing else.
    for module in (
        slots,
        bookings,
        availability,
        fhir,
        health,
        territories,
        regulators,
        practices,
        practitioners,
        keys,
        agenda_feeds,
        mt_requests,
        webhooks,
        regulator_accounts,
        sas_notifications,
        indicators,
        unmet_requests,
        slot_calls,
        crises,
        crisis_plans,
    ):
        app.include_router(module.router)
    for web_module in (
        auth,
        pages,
        practice_pages,
        practice_rule_pages,
        practice_slot_pages,
        practice_mt_pages,
        regulator_pages,
        overbook_pages,
        cpts_pages,
        unmet_pages,
        booking_pages,
        coordinator_pages,
        coordinator_directory_pages,
        mt_import_pages,
        gap_pages,
        call_link_pages,
        crisis_link_pages,
        crisis_pages,
        crisis_plan_pages,
        slot_call_pages,
        call_opt_in_pages,
        directory_pages,
        agenda_pages,
        outreach_pages,
    ):
        app.include_router(web_module.router)
    # Crisis response (issue 29): the reports.
    app.include_router(crisis_reports.router)
    app.include_router(crisis_report_pages.router)
    install_api_docs(app)
    app.mount(
        "/static",
        StaticFiles(directory=Path(__file__).parent / "web" / "static"),
        name="static",
    )
    app.add_middleware(EdgeMiddleware, max_body_bytes=settings.max_body_bytes)
    return app
