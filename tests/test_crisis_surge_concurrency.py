"""Surge mode on real, committed transactions: two declarations at the same moment make one
crisis (the other is a 409, never a 500), whichever of the check and the unique index stops it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.crisis import declaration
from app.crisis.models import Crisis
from app.crisis.schemas import CrisisIn
from app.db import make_sessionmaker
from app.errors import Conflict
from app.security import Caller
from tests.conftest import create_gp


async def test_two_declarations_at_once_make_one_crisis(engine: AsyncEngine):
    factory = make_sessionmaker(engine)
    async with factory() as session:
        gp = await create_gp(session, f"CPTS crise concurrente {uuid.uuid4().hex[:8]}")
        await session.commit()
    admin = Caller(key_id=uuid.uuid4(), role="admin")
    now = datetime.now(UTC)
    end = now + timedelta(days=2)
    body = CrisisIn(
        kind="epidemic", title="Grippe", started_at=now, expected_end_at=end,
        territory_id=gp.territory_id,
    )  # fmt: skip
    settings = Settings(public_base_url="https://creneau.example")

    async def declare() -> str:
        async with factory() as session:
            try:
                await declaration.declare(session, admin, body, now, settings)
                await session.commit()
                return "created"
            except Conflict:
                return "conflict"

    assert sorted(await asyncio.gather(declare(), declare(), declare())) == [
        "conflict", "conflict", "created",
    ]  # fmt: skip
    async with factory() as session:
        count = await session.scalar(
            select(func.count()).select_from(Crisis).where(Crisis.territory_id == gp.territory_id)
        )
        assert count == 1
