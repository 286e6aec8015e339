"""The caller cache: a key seen recently costs no lookup, and any committed change to keys,
practices or SAS links empties it at once. These tests use committed data and an app running
its lifespan on its own engine, as in production (the rolled-back tests run without it)."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.caller_cache import CallerCache
from app.config import Settings
from app.db import make_sessionmaker
from app.directory import key_service, regulator_service
from app.directory import schemas as dir_schemas
from app.main import create_app
from app.metrics import exposition
from app.security import Caller, digest
from tests.conftest import create_gp
from tests.test_inbound_mtls import free_port, spawn_serve

ADMIN = Caller(key_id=uuid.uuid4(), role="admin")


async def eventually(check: Callable[[], Awaitable[bool] | bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.02)


class Served:
    client: httpx.AsyncClient
    cache: CallerCache
    db: asyncpg.Connection


@pytest.fixture
async def served(database_url: str) -> AsyncIterator[Served]:
    """The app with its lifespan (its own engine, so its caller cache listens) and a plain
    connection that commits changes behind its back."""
    settings = Settings(
        database_url=database_url,
        scheduler_enabled=False,
        log_level="WARNING",
        rate_limit_per_minute=0,
    )
    app = create_app(settings)
    out = Served()
    out.cache = app.state.caller_cache
    out.db = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        async with app.router.lifespan_context(app):
            await eventually(lambda: out.cache.active)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                out.client = client
                yield out
    finally:
        await out.db.close()


async def committed_key(
    engine: AsyncEngine, role: str, cache: CallerCache | None = None, **scope: Any
) -> tuple[str, uuid.UUID]:
    """A committed key. With `cache`: once the notifications of the commits so far have all
    reached it, so that none empties it after the test's first request."""
    before = cache.generation() if cache else 0
    async with make_sessionmaker(engine)() as s:
        key, secret = await key_service.create_key(
            s, None, dir_schemas.KeyIn(role=role, name=f"cache {role}", **scope)
        )
        await s.commit()
    if cache is not None:
        await eventually(lambda: cache.generation() > before)
        await settled(cache)
    return secret, key.id


async def settled(cache: CallerCache, quiet_seconds: float = 0.3) -> None:
    """Until no notification has reached `cache` for `quiet_seconds` (loopback delivers them
    within milliseconds of their commit)."""
    last, since = cache.generation(), time.monotonic()
    while time.monotonic() - since < quiet_seconds:
        await asyncio.sleep(0.02)
        if cache.generation() != last:
            last, since = cache.generation(), time.monotonic()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_a_key_seen_once_is_served_from_the_cache(
    served: Served, engine: AsyncEngine
) -> None:
    secret, key_id = await committed_key(engine, "admin", served.cache)
    assert served.cache.get(digest(secret)) is None
    r = await served.client.get("/v1/territories", headers=bearer(secret))
    assert r.status_code == 200, r.text
    cached = served.cache.get(digest(secret))
    assert cached is not None and cached.key_id == key_id and cached.role == "admin"


async def test_a_cached_key_is_refused_as_soon_as_its_revocation_commits(
    served: Served, engine: AsyncEngine
) -> None:
    secret, key_id = await committed_key(engine, "admin", served.cache)
    assert (await served.client.get("/v1/territories", headers=bearer(secret))).status_code == 200
    assert served.cache.get(digest(secret)) is not None

    await served.db.execute("UPDATE api_key SET revoked_at = now() WHERE id = $1", key_id)
    await eventually(lambda: served.cache.get(digest(secret)) is None, seconds=2)
    r = await served.client.get("/v1/territories", headers=bearer(secret))
    assert r.status_code == 401, r.text


async def test_a_rolled_back_change_keeps_the_cache(served: Served, engine: AsyncEngine) -> None:
    secret, key_id = await committed_key(engine, "admin", served.cache)
    await served.client.get("/v1/territories", headers=bearer(secret))
    transaction = served.db.transaction()
    await transaction.start()
    await served.db.execute("UPDATE api_key SET revoked_at = now() WHERE id = $1", key_id)
    await transaction.rollback()
    await asyncio.sleep(0.2)
    assert served.cache.get(digest(secret)) is not None
    assert (await served.client.get("/v1/territories", headers=bearer(secret))).status_code == 200


async def test_a_new_link_of_the_sas_to_a_territory_reaches_its_cached_callers(
    served: Served, engine: AsyncEngine
) -> None:
    async with make_sessionmaker(engine)() as s:
        first = await create_gp(s, "CPTS cache un")
        second = await create_gp(s, "CPTS cache deux")
        sas = await regulator_service.create_regulator(
            s, ADMIN, dir_schemas.RegulatorIn(name="SAS cache", department="15")
        )
        await regulator_service.link_regulator(s, ADMIN, first.territory_id, sas.id)
        await s.commit()
    secret, _ = await committed_key(engine, "regulator", served.cache, regulator_id=sas.id)
    r = await served.client.get("/v1/slots", headers=bearer(secret))
    assert r.status_code == 200, r.text
    cached = served.cache.get(digest(secret))
    assert cached is not None and cached.territory_ids == {first.territory_id}

    await served.db.execute(
        "INSERT INTO regulator_territory (regulator_id, territory_id) VALUES ($1, $2)",
        sas.id,
        second.territory_id,
    )
    await eventually(lambda: served.cache.get(digest(secret)) is None, seconds=2)
    await served.client.get("/v1/slots", headers=bearer(secret))
    cached = served.cache.get(digest(secret))
    assert cached is not None
    assert cached.territory_ids == {first.territory_id, second.territory_id}


async def test_deleting_a_practice_refuses_its_cached_key(
    served: Served, engine: AsyncEngine
) -> None:
    async with make_sessionmaker(engine)() as s:
        gp = await create_gp(s, "CPTS cache cabinet")
        await s.commit()
    secret, _ = await committed_key(engine, "practice", served.cache, practice_id=gp.practice_id)
    r = await served.client.get(f"/v1/practitioners/{gp.id}", headers=bearer(secret))
    assert r.status_code == 200, r.text
    assert served.cache.get(digest(secret)) is not None

    # The key goes with its practice (ON DELETE CASCADE).
    await served.db.execute("DELETE FROM practitioner WHERE practice_id = $1", gp.practice_id)
    await served.db.execute("DELETE FROM practice WHERE id = $1", gp.practice_id)
    await eventually(lambda: served.cache.get(digest(secret)) is None, seconds=2)
    r = await served.client.get(f"/v1/practitioners/{gp.id}", headers=bearer(secret))
    assert r.status_code == 401, r.text


async def test_the_cache_is_off_while_its_listening_connection_is_down(
    served: Served, engine: AsyncEngine
) -> None:
    secret, key_id = await committed_key(engine, "admin", served.cache)
    await served.client.get("/v1/territories", headers=bearer(secret))
    assert served.cache.get(digest(secret)) is not None

    await served.db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'creneau-callers' AND datname = current_database()"
    )
    await eventually(lambda: not served.cache.active, seconds=2)
    assert served.cache.get(digest(secret)) is None
    assert b"creneau_caller_cache_listening 0.0" in exposition()
    # Meanwhile every request reads its key, and sees a revocation made while nobody listened.
    await served.db.execute("UPDATE api_key SET revoked_at = now() WHERE id = $1", key_id)
    r = await served.client.get("/v1/territories", headers=bearer(secret))
    assert r.status_code == 401, r.text
    await eventually(lambda: served.cache.active, seconds=5)
    assert b"creneau_caller_cache_listening 1.0" in exposition()


def test_a_lookup_begun_before_an_invalidation_is_not_kept() -> None:
    cache = CallerCache(ttl_seconds=60)
    cache.start_listening()
    began = cache.generation()
    cache.invalidate()  # a change committed while the lookup ran
    cache.put("digest", ADMIN, began)
    assert cache.get("digest") is None
    cache.put("digest", ADMIN, cache.generation())
    assert cache.get("digest") is ADMIN


def test_nothing_is_cached_before_the_cache_listens() -> None:
    cache = CallerCache(ttl_seconds=60)
    cache.put("digest", ADMIN, cache.generation())
    assert cache.get("digest") is None and len(cache) == 0


def test_a_cached_caller_expires_after_its_time() -> None:
    cache = CallerCache(ttl_seconds=0.05)
    cache.start_listening()
    cache.put("digest", ADMIN, cache.generation())
    assert cache.get("digest") is ADMIN
    time.sleep(0.06)
    assert cache.get("digest") is None


def test_a_full_cache_drops_its_oldest_caller() -> None:
    cache = CallerCache(ttl_seconds=60, max_entries=2)
    cache.start_listening()
    for name in ("a", "b", "c"):
        cache.put(name, ADMIN, cache.generation())
    assert cache.get("a") is None and cache.get("b") is ADMIN and cache.get("c") is ADMIN


def test_a_zero_time_turns_the_cache_off() -> None:
    assert not CallerCache(ttl_seconds=0).enabled
    assert create_app(Settings(caller_cache_seconds=0)).state.caller_cache.enabled is False


@pytest.mark.xdist_group("servers")  # one service subprocess at a time (scripts/test.sh)
async def test_every_worker_refuses_a_key_once_its_revocation_commits(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    """`creneau serve --workers 2`: each worker caches the caller, and each hears the
    revocation."""
    secret, key_id = await committed_key(engine, "admin")
    port = free_port()
    log = tmp_path / "serve.log"
    proc = await spawn_serve(port, database_url, log, workers=2)
    url = f"http://127.0.0.1:{port}"

    async def fresh_get(path: str) -> httpx.Response:
        # A new connection each time, so the kernel spreads them over both workers.
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.get(f"{url}{path}", headers=bearer(secret))

    async def both_listening() -> bool:
        try:
            metrics = (await fresh_get("/metrics")).text
        except httpx.TransportError:
            assert proc.returncode is None, log.read_text()[-3000:]
            return False
        return "creneau_caller_cache_listening 2.0" in metrics

    async def statuses() -> set[int]:
        return {(await fresh_get("/v1/territories")).status_code for _ in range(20)}

    try:
        await eventually(both_listening, seconds=60)
        assert await statuses() == {200}
        db = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            await db.execute("UPDATE api_key SET revoked_at = now() WHERE id = $1", key_id)
        finally:
            await db.close()

        async def all_refused() -> bool:
            return await statuses() == {401}

        await eventually(all_refused, seconds=3)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
