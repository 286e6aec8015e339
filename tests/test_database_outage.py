"""When PostgreSQL is unreachable, restarting, or drops a connection mid-request, clients get
a 503 problem with Retry-After (never a 500, never a dropped connection), and the service
recovers without a restart. bench/faults.py shows the same against a real PostgreSQL crash."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.api.deps import SessionDep
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.main import create_app
from tests.conftest import assert_problem


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there once the socket is closed


@pytest.fixture
async def unreachable(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    engine = make_engine(
        f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/creneau", settings
    )
    app = create_app(settings)
    app.state.sessionmaker = make_sessionmaker(engine)
    # raise_app_exceptions stays on: an exception escaping the app (which makes uvicorn drop
    # the client's keep-alive connection) would fail the test.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        yield client
    await engine.dispose()


async def test_unreachable_database_is_a_503_problem_with_retry_after(unreachable):
    r = await unreachable.get("/v1/slots", headers={"Authorization": "Bearer crn_x"})
    body = assert_problem(r, 503, "/service-unavailable")
    assert r.headers["retry-after"] == "2"
    assert "Idempotency-Key" in body["detail"]
    assert "Connection refused" not in r.text  # no internals


async def test_a_booking_during_the_outage_is_a_503_the_client_may_retry(unreachable):
    r = await unreachable.post(
        "/v1/bookings",
        json={"slot_id": "00000000-0000-0000-0000-000000000000", "hold": True},
        headers={"Authorization": "Bearer crn_x", "Idempotency-Key": "k1"},
    )
    assert_problem(r, 503, "/service-unavailable")


async def test_readiness_reports_the_outage(unreachable):
    r = await unreachable.get("/health/ready")
    assert_problem(r, 503, "/service-unavailable")
    assert (await unreachable.get("/health/live")).status_code == 200


async def test_connection_killed_mid_request_is_a_503_and_the_pool_recovers(
    settings: Settings, database_url: str, engine: AsyncEngine
):
    """The server ends the request's connection (as a PostgreSQL restart does): that request
    is a 503, and the next ones get a fresh connection from the pool."""
    del engine  # the session's database, created and migrated by that fixture
    engine = make_engine(database_url, settings, pool_size=1, max_overflow=0)
    app = create_app(settings)
    app.state.sessionmaker = make_sessionmaker(engine)

    @app.get("/test/terminate-my-connection")
    async def terminate(session: SessionDep) -> None:
        await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))

    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            assert (await client.get("/health/ready")).status_code == 200
            r = await client.get("/test/terminate-my-connection")
            assert_problem(r, 503, "/service-unavailable")
            assert r.headers["retry-after"] == "2"
            # The single pooled connection was the one killed: the pool replaces it.
            for _ in range(3):
                assert (await client.get("/health/ready")).status_code == 200
    finally:
        await engine.dispose()
