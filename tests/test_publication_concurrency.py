"""Concurrency on real, committed transactions: the database itself refuses overlaps, and the
materialisation job runs once even when two runners start together."""

import asyncio
import itertools
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import make_sessionmaker
from app.errors import Conflict
from app.jobs import run_exclusive
from app.scheduling import schemas, service
from app.scheduling.models import Slot
from app.security import Caller
from tests.conftest import create_gp


@pytest.fixture
async def committed_practitioner(engine: AsyncEngine) -> uuid.UUID:
    """A territory, practice and practitioner committed for real (not rolled back)."""
    async with make_sessionmaker(engine)() as session:
        practitioner = await create_gp(session, "CPTS concurrence")
        await session.commit()
        return practitioner.id


async def test_concurrent_overlapping_publications_leave_no_overlap(engine, committed_practitioner):
    admin = Caller(key_id=uuid.uuid4(), role="admin")
    factory = make_sessionmaker(engine)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)

    async def publish(offset_minutes: int) -> str:
        async with factory() as session:
            try:
                await service.create_one_off_slot(
                    session,
                    admin,
                    committed_practitioner,
                    schemas.OneOffSlotIn(
                        start=start + timedelta(minutes=offset_minutes),
                        end=start + timedelta(minutes=offset_minutes + 30),
                        modality="cabinet",
                        visibility="sas",
                    ),
                )
                await session.commit()
                return "created"
            except Conflict:
                return "conflict"

    async def publish_rule() -> str:
        async with factory() as session:
            try:
                await service.create_rule(
                    session,
                    admin,
                    committed_practitioner,
                    schemas.RuleIn(
                        rrule="FREQ=DAILY",
                        start_time="00:00",
                        end_time="00:00",
                        slot_minutes=60,
                        modality="cabinet",
                        visibility="sas",
                        valid_from=date.today(),
                    ),
                )
                await session.commit()
                return "created"
            except Conflict:
                return "conflict"

    results = await asyncio.gather(*(publish(m) for m in range(0, 30, 3)), publish_rule())
    assert "created" in results
    async with factory() as session:
        rows = (
            await session.execute(
                select(Slot.start, Slot.end)
                .where(Slot.practitioner_id == committed_practitioner)
                .order_by(Slot.start)
            )
        ).all()
    assert rows
    for (_, end), (next_start, _) in itertools.pairwise(rows):
        assert end <= next_start


async def test_materialisation_job_under_two_concurrent_runners(engine, committed_practitioner):
    admin = Caller(key_id=uuid.uuid4(), role="admin")
    factory = make_sessionmaker(engine)
    async with factory() as session:
        await service.create_rule(
            session,
            admin,
            committed_practitioner,
            schemas.RuleIn(
                rrule="FREQ=DAILY",
                start_time="08:00",
                end_time="10:00",
                slot_minutes=30,
                modality="cabinet",
                visibility="sas",
                valid_from=date.today(),
            ),
        )
        await session.commit()
    later = datetime.now(UTC) + timedelta(days=5)

    async def job(session):
        return await service.materialize_all(session, now=later)

    async with factory() as session:
        before = await session.scalar(
            select(func.count()).where(Slot.practitioner_id == committed_practitioner)
        )
    results = await asyncio.gather(
        run_exclusive(factory, "materialize", job), run_exclusive(factory, "materialize", job)
    )
    assert any(r is not None for r in results)
    async with factory() as session:
        after = await session.scalar(
            select(func.count()).where(Slot.practitioner_id == committed_practitioner)
        )
        assert after == before + 5 * 4
        dupes = await session.scalar(
            select(func.count()).select_from(
                select(Slot.start)
                .where(Slot.practitioner_id == committed_practitioner)
                .group_by(Slot.start)
                .having(func.count() > 1)
                .subquery()
            )
        )
    assert dupes == 0
