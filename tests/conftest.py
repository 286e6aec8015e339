"""Tests run against real PostgreSQL, built from empty by the Alembic migrations. Each test
runs inside a transaction that is rolled back at the end (savepoints absorb the app's commits)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.clock import FrozenClock, frozen_at
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.directory import key_service, practice_service, practitioner_service, territory_service
from app.directory import schemas as dir_schemas
from app.directory.communes_load import ensure_loaded
from app.directory.models import Practitioner
from app.main import create_app
from app.migrate import upgrade_to_head
from app.sas_bridge.feed_fetch import feed_client
from app.security import Caller
from app.web.auth import FAILURES
from tests.dbtools import (
    database_name,
    drop_database,
    recreate_database,
    server_url,
    with_database,
)
from tests.fhir_profiles import assert_conforms


def pytest_configure(config: pytest.Config) -> None:
    """Find the tests' PostgreSQL (or start the embedded one) once, in the main process: the
    pytest-xdist workers it starts afterwards inherit TEST_DATABASE_URL and never race to
    start a server of their own."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        server_url()


@pytest.fixture(scope="session")
def database_url() -> str:
    return with_database(server_url(), database_name("test"))


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await recreate_database(database_url)
    # Migrations from an empty database: the same path production takes.
    await asyncio.to_thread(upgrade_to_head, database_url)
    engine = make_engine(database_url, pool_size=5, max_overflow=20)
    async with make_sessionmaker(engine)() as session:  # the referential of communes
        await ensure_loaded(session)
        await session.commit()
    yield engine
    await engine.dispose()
    await drop_database(database_url)


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            yield conn
        finally:
            await transaction.rollback()


@pytest.fixture
def sessionmaker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        bind=connection,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
        autoflush=False,
    )


@pytest.fixture
async def session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        scheduler_enabled=False,
        log_level="WARNING",
        max_body_bytes=64_000,
        rate_limit_per_minute=0,
    )


@pytest.fixture
async def client(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    app.state.sessionmaker = sessionmaker
    app.state.feed_http = feed_client()  # what the lifespan sets up, which tests skip
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", event_hooks={"response": [fhir_conformance]}
    ) as client:
        yield client
    await app.state.feed_http.aclose()


async def fhir_conformance(response: httpx.Response) -> None:
    """Every FHIR resource the service answers with, in any test, passes the base model and
    the profiles it claims (the conformance tables written from the ANS SAS guide 1.2.0,
    https://interop.esante.gouv.fr/ig/fhir/sas, in tests/fhir_conformance_tables*.py)."""
    kind = response.headers.get("content-type", "")
    if not kind.startswith(("application/fhir+json", "application/fhir+ndjson")):
        return
    await response.aread()
    if kind.startswith("application/fhir+ndjson"):
        resources = [json.loads(line) for line in response.text.splitlines() if line]
    else:
        resources = [response.json()]
    for resource in resources:
        assert_conforms(resource)


class World:
    """Builds directory data through the services and hands out API keys for each role."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def key(self, role: str, **scope: uuid.UUID) -> dict[str, str]:
        data = dir_schemas.KeyIn(role=role, name=f"test {role}", **scope)  # type: ignore[arg-type]
        _, secret = await key_service.create_key(self.session, None, data)
        await self.session.commit()
        return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def world(session: AsyncSession) -> World:
    return World(session)


@pytest.fixture
async def admin(world: World) -> dict[str, str]:
    return await world.key("admin")


def territory_body(**over: Any) -> dict[str, Any]:
    return {"name": "CPTS Test", "timezone": "Europe/Paris", "department": "15", **over}


def practice_body(territory_id: str, **over: Any) -> dict[str, Any]:
    return {
        "territory_id": territory_id,
        "name": "Maison de santé d'Aurillac",
        "address": "2 place de l'Hôtel de Ville",
        "commune_insee": "15014",
        "lat": 44.9264,
        "lon": 2.4396,
        **over,
    }


_rpps_counter = iter(range(10_000_000_000, 10_999_999_999, 7))


def practitioner_body(practice_id: str, **over: Any) -> dict[str, Any]:
    return {
        "practice_id": practice_id,
        "rpps": str(next(_rpps_counter)),
        "family_name": "Martin",
        "given_name": "Claire",
        **over,
    }


class Territory:
    """A territory with a practice, a practitioner, and keys for each role."""

    id: str
    practice_id: str
    practitioner_id: str
    coordinator: dict[str, str]
    practice: dict[str, str]
    regulator: dict[str, str]
    regulator_id: str
    dashboard: dict[str, str]


async def make_territory(
    client: httpx.AsyncClient, world: World, admin: dict[str, str], **over: Any
) -> Territory:
    t = Territory()
    r = await client.post("/v1/territories", json=territory_body(**over), headers=admin)
    assert r.status_code == 201, r.text
    t.id = r.json()["id"]
    r = await client.post(
        "/v1/regulators", json={"name": "SAS Cantal", "department": "15"}, headers=admin
    )
    assert r.status_code == 201, r.text
    t.regulator_id = r.json()["id"]
    r = await client.post(
        f"/v1/territories/{t.id}/regulators", json={"regulator_id": t.regulator_id}, headers=admin
    )
    assert r.status_code == 204, r.text
    r = await client.post("/v1/practices", json=practice_body(t.id), headers=admin)
    assert r.status_code == 201, r.text
    t.practice_id = r.json()["id"]
    r = await client.post("/v1/practitioners", json=practitioner_body(t.practice_id), headers=admin)
    assert r.status_code == 201, r.text
    t.practitioner_id = r.json()["id"]
    t.coordinator = await world.key("coordinator", territory_id=uuid.UUID(t.id))
    t.practice = await world.key("practice", practice_id=uuid.UUID(t.practice_id))
    t.regulator = await world.key("regulator", regulator_id=uuid.UUID(t.regulator_id))
    t.dashboard = await world.key("dashboard", territory_id=uuid.UUID(t.id))
    return t


@pytest.fixture
async def territory(client: httpx.AsyncClient, world: World, admin: dict[str, str]) -> Territory:
    return await make_territory(client, world, admin)


@pytest.fixture
async def other_territory(
    client: httpx.AsyncClient, world: World, admin: dict[str, str]
) -> Territory:
    return await make_territory(client, world, admin, name="CPTS Autre", department="48")


def assert_problem(
    response: httpx.Response, status: int, type_suffix: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    if type_suffix:
        assert body["type"].endswith(type_suffix), body["type"]
    assert "Traceback" not in response.text
    return body


ADMIN_CALLER = Caller(key_id=uuid.UUID(int=1), role="admin")


async def create_gp(
    session: AsyncSession, name: str, *, timezone: str = "Europe/Paris", **practitioner: Any
) -> Practitioner:
    """A territory in `timezone`, a practice and a GP, made through the services in `session`
    (the caller commits). For tests that need committed data on several connections."""
    territory = await territory_service.create_territory(
        session,
        ADMIN_CALLER,
        dir_schemas.TerritoryIn(name=name, timezone=timezone, department="15"),
    )
    practice = await practice_service.create_practice(
        session,
        ADMIN_CALLER,
        dir_schemas.PracticeIn(
            territory_id=territory.id,
            name="MSP",
            address="1 rue de la Mairie",
            commune_insee="15014",
            lat=44.9,
            lon=2.4,
        ),
    )
    fields = {
        "rpps": f"{uuid.uuid4().int % 10**11:011d}",
        "family_name": "Durand",
        "given_name": "Léa",
        **practitioner,
    }
    return await practitioner_service.create_practitioner(
        session, ADMIN_CALLER, dir_schemas.PractitionerIn(practice_id=practice.id, **fields)
    )


@pytest.fixture
async def operator(client: httpx.AsyncClient, world: World) -> dict[str, str]:
    """A regulator account created by the SAS platform, as a booking's operator."""
    from tests.test_regulator_accounts import SAS, account

    platform = await world.key("sas_platform")
    tech = str(uuid.uuid4())
    r = await client.post("/fhir/Practitioner", json=account(tech), headers=platform)
    assert r.status_code == 201
    return {"system": SAS, "value": tech}


@pytest.fixture(autouse=True)
def no_failed_sign_ins() -> Iterator[None]:
    """Each test starts with no failed sign-in on record. app.web.auth.FAILURES is one table
    per process: a test that signs in with a wrong key would otherwise make the next test's
    sign-in from 127.0.0.1 wait (up to 8 s), in whichever test comes next."""
    yield
    FAILURES._failures.clear()


@pytest.fixture
def clock() -> Iterator[FrozenClock]:
    """The service's clock (app.clock), standing at the current instant until the test sets
    it (`clock.set(...)`, `clock.advance(...)`): behaviour at any date, run on any day."""
    with frozen_at(datetime.now(UTC)) as frozen:
        yield frozen


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def statements(connection: AsyncConnection, containing: str = "") -> Iterator[list[str]]:
    """Every SQL statement sent on `connection` while the block runs (those `containing` a
    text, when given)."""
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        if containing in statement:
            seen.append(statement)

    sync = connection.sync_connection
    assert sync is not None
    event.listen(sync, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(sync, "before_cursor_execute", count)


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Any]:
    """One headless Chromium (Debian's) per test process, started by the first browser test:
    starting one takes longer than most browser tests. Each test gets its own contexts
    (the `browser` fixture of tests/test_browser_dashboard.py closes them afterwards)."""
    from playwright.async_api import async_playwright

    assert CHROMIUM is not None, "chromium missing (apt-get install chromium)"
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        await browser.close()
