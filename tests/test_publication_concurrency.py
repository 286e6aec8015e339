"""Concurrency on real, committed transactions: the database itself refuses overlaps, and the
materialisation job runs once even when two runners start together."""

import asyncio
import itertools
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.activity.models import ActivityEvent
from app.db import make_sessionmaker
from app.errors import Conflict
from app.jobs import materialize_by_hand, run_exclusive
from app.scheduling import materialisation, one_off_slots, publication, schemas
from app.scheduling.models import AvailabilityRule, Slot
from app.security import Caller
from tests.conftest import create_gp


def _daily_rule(start_time: str, end_time: str, slot_minutes: int) -> schemas.RuleIn:
    """A daily SAS rule at the practice, valid from today."""
    return schemas.RuleIn(
        rrule="FREQ=DAILY",
        start_time=start_time,
        end_time=end_time,
        slot_minutes=slot_minutes,
        modality="cabinet",
        visibility="sas",
        valid_from=date.today(),
    )


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
                await one_off_slots.create_one_off_slot(
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
                await publication.create_rule(
                    session,
                    admin,
                    committed_practitioner,
                    _daily_rule("00:00", "00:00", 60),
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
        await publication.create_rule(
            session,
            admin,
            committed_practitioner,
            _daily_rule("08:00", "10:00", 30),
        )
        await session.commit()
    later = datetime.now(UTC) + timedelta(days=5)

    async def job(session):
        return await materialisation.materialize_all(session, now=later, connections=2)

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


async def _two_territories_with_rules(engine: AsyncEngine) -> tuple[list[uuid.UUID], datetime]:
    """Two committed GPs in two territories, each with a daily 08:00-10:00 rule; and an
    instant 5 days later, when the job has 5 more days of slots to add for each."""
    admin = Caller(key_id=uuid.uuid4(), role="admin")
    gps = []
    async with make_sessionmaker(engine)() as session:
        for name in ("CPTS parallèle A", "CPTS parallèle B"):
            gp = await create_gp(session, name)
            await publication.create_rule(
                session,
                admin,
                gp.id,
                _daily_rule("08:00", "10:00", 30),
            )
            gps.append(gp.id)
        await session.commit()
    return gps, datetime.now(UTC) + timedelta(days=5)


async def _counts(engine: AsyncEngine, gps: list[uuid.UUID]) -> list[tuple[int, int]]:
    """Per GP: slots, and slots on offer according to the ledger's `slots.offered` events."""
    async with make_sessionmaker(engine)() as session:
        out = []
        for gp in gps:
            slots = await session.scalar(select(func.count()).where(Slot.practitioner_id == gp))
            events = await session.scalars(
                select(ActivityEvent.data).where(
                    ActivityEvent.practitioner_id == gp, ActivityEvent.type == "slots.offered"
                )
            )
            offered = sum(d["slots"] for data in events for d in data["days"].values())
            out.append((slots or 0, offered))
        return out


async def test_materialisation_on_two_connections(engine):
    """The job shares the territories between its session and a second connection: every
    territory gets its slots and its offer events once, and a second run changes nothing."""
    gps, later = await _two_territories_with_rules(engine)
    before = await _counts(engine, gps)
    factory = make_sessionmaker(engine)

    async def job(session):
        return await materialisation.materialize_all(session, now=later, connections=2)

    result = await run_exclusive(factory, "materialize", job)
    assert result is not None and result["slots_created"] >= 2 * 5 * 4
    after = await _counts(engine, gps)
    assert after == [(slots + 5 * 4, offered + 5 * 4) for slots, offered in before]
    async with factory() as session:
        until = await session.scalars(
            select(AvailabilityRule.materialized_until).where(
                AvailabilityRule.practitioner_id.in_(gps)
            )
        )
        assert set(until) == {later + timedelta(days=14)}
    again = await run_exclusive(factory, "materialize", job)
    assert again == {"rules": 0, "slots_created": 0, "skipped": 0}
    assert await _counts(engine, gps) == after


async def test_materialisation_part_failing_commits_nothing(engine, monkeypatch):
    """If one connection's part fails, the other part is not committed either."""
    gps, later = await _two_territories_with_rules(engine)
    before = await _counts(engine, gps)
    real = materialisation._materialize_rules

    async def failing(session, rules, **kwargs):
        if any(rule.practitioner_id == gps[1] for rule in rules):
            raise RuntimeError("part B fails")
        return await real(session, rules, **kwargs)

    monkeypatch.setattr(materialisation, "_materialize_rules", failing)

    async def job(session):
        return await materialisation.materialize_all(session, now=later, connections=2)

    with pytest.raises(RuntimeError, match="part B fails"):
        await run_exclusive(make_sessionmaker(engine), "materialize", job)
    assert await _counts(engine, gps) == before


async def test_materialising_by_hand_waits_for_a_running_job(engine, committed_practitioner):
    factory = make_sessionmaker(engine)
    job_running = asyncio.Event()
    job_may_end = asyncio.Event()

    async def slow_job(session):
        job_running.set()
        await job_may_end.wait()
        return {}

    job = asyncio.create_task(run_exclusive(factory, "materialize", slow_job))
    await job_running.wait()
    async with factory() as session:
        by_hand = asyncio.create_task(materialize_by_hand(session, horizon_days=1))
        await asyncio.sleep(0.5)
        assert not by_hand.done(), "the hand run went ahead while the job held its lock"
        job_may_end.set()
        await job
        result = await asyncio.wait_for(by_hand, 30)
        await session.commit()
    assert "slots_created" in result
