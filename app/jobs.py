"""The background scheduler. It decides *when*; domain services decide *what*.

Each job takes a PostgreSQL advisory lock, so with several workers only one runs it at a
time, and every job is safe to run twice."""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.metrics import JOB_RUNS

log = logging.getLogger(__name__)

JobFn = Callable[[AsyncSession], Awaitable[dict[str, Any]]]


def lock_key(name: str) -> int:
    """A stable 32-bit advisory-lock key per job name."""
    return zlib.crc32(f"creneau.job.{name}".encode())


async def run_exclusive(
    factory: async_sessionmaker[AsyncSession], name: str, job: JobFn
) -> dict[str, Any] | None:
    """Run `job` in one transaction if no other process holds its lock; None if skipped.

    pg_try_advisory_xact_lock is released by the commit or rollback, whatever happens."""
    started = time.perf_counter()
    async with factory() as session:
        got = await session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": lock_key(name)}
        )
        if not got:
            JOB_RUNS.labels(name, "skipped").inc()
            log.info("job skipped: another process runs it", extra={"job": name})
            return None
        try:
            result = await job(session)
            await session.commit()
        except Exception:
            await session.rollback()
            JOB_RUNS.labels(name, "failed").inc()
            log.exception("job failed", extra={"job": name})
            raise
    JOB_RUNS.labels(name, "ok").inc()
    log.info(
        "job done",
        extra={
            "job": name,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            **result,
        },
    )
    return result


class JobSpec:
    def __init__(self, name: str, fn: JobFn, *, seconds: int) -> None:
        self.name, self.fn, self.seconds = name, fn, seconds


async def _materialize(session: AsyncSession) -> dict[str, Any]:
    from app.scheduling.materialisation import materialize_all

    # The job's session has written nothing but its lock: the work may use a second
    # connection, so that PostgreSQL inserts on two cores.
    return await materialize_all(session, connections=2)


async def materialize_by_hand(
    session: AsyncSession, *, horizon_days: int | None = None, progress: Any = None
) -> dict[str, Any]:
    """`creneau materialize`: waits for the job's lock (a run in progress finishes first),
    then does what the job does."""
    from app.scheduling.materialisation import materialize_all

    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key("materialize")})
    return await materialize_all(
        session, horizon_days=horizon_days, progress=progress, connections=2
    )


async def _expire_holds(session: AsyncSession) -> dict[str, Any]:
    from app.scheduling.booking_outcomes import expire_holds

    return await expire_holds(session)


async def _purge_idempotency(session: AsyncSession) -> dict[str, Any]:
    from app.idempotency import purge_expired

    return await purge_expired(session)


async def _expire_mt_proposals(session: AsyncSession) -> dict[str, Any]:
    from app.medecin_traitant.transitions import expire_proposals

    return await expire_proposals(session)


async def _purge_patient_data(session: AsyncSession) -> dict[str, Any]:
    from app.retention import purge_expired

    return await purge_expired(session)


async def _slot_calls(session: AsyncSession) -> dict[str, int]:
    from app.clock import now_utc
    from app.unmet_demand import calls

    return {"calls": len(await calls.run(session, now_utc()))}


async def _slot_call_mail(session: AsyncSession) -> dict[str, int]:
    from app.config import get_settings
    from app.unmet_demand import calls

    return await calls.send_pending(session, get_settings())


async def _crisis_call_mail(session: AsyncSession) -> dict[str, int]:
    from app.config import get_settings
    from app.crisis import calls

    return await calls.send_pending(session, get_settings())


async def _crisis_plan_reviews(session: AsyncSession) -> dict[str, int]:
    from app.clock import now_utc
    from app.crisis.plans import record_due_reviews

    return {"reviews_due": await record_due_reviews(session, now_utc())}


async def _crisis_plan_review_mail(session: AsyncSession) -> dict[str, int]:
    from app.config import get_settings
    from app.crisis import review_mail

    return await review_mail.send_pending(session, get_settings())


def registered_jobs() -> list[JobSpec]:
    """Every periodic job of the service; each domain contributes its own. Each runs once at
    start-up, then at its interval."""
    return [
        # Hourly rather than daily: a restart or a DST change never leaves a gap for long,
        # and a run that finds nothing to do costs one query.
        JobSpec("materialize", _materialize, seconds=3600),
        JobSpec("expire_holds", _expire_holds, seconds=30),
        JobSpec("purge_idempotency", _purge_idempotency, seconds=3600),
        JobSpec("expire_mt_proposals", _expire_mt_proposals, seconds=900),
        JobSpec("purge_patient_data", _purge_patient_data, seconds=6 * 3600),
        JobSpec("slot_calls", _slot_calls, seconds=900),
        JobSpec("slot_call_mail", _slot_call_mail, seconds=60),
        JobSpec("crisis_call_mail", _crisis_call_mail, seconds=30),
        # Daily in effect (once per plan version); hourly so a territory's local midnight,
        # whatever its zone, is seen within the hour.
        JobSpec("crisis_plan_reviews", _crisis_plan_reviews, seconds=3600),
        # The reminders those reviews queued, e-mailed once that job's run has committed.
        JobSpec("crisis_plan_review_mail", _crisis_plan_review_mail, seconds=300),
    ]


def build_scheduler(
    factory: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    platform: httpx.AsyncClient | None = None,
    *,
    feed_http: httpx.AsyncClient | None = None,
) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")

    async def deliver() -> None:
        # Not under an advisory lock: messages are claimed with SKIP LOCKED, so every
        # worker may deliver, and HTTP calls never run inside a transaction.
        from app.sas_bridge.outbox import deliver_due

        try:
            await deliver_due(factory, http, platform=platform)
            JOB_RUNS.labels("deliver_outbox", "ok").inc()
        except Exception:
            JOB_RUNS.labels("deliver_outbox", "failed").inc()
            log.exception("outbox delivery failed", extra={"job": "deliver_outbox"})

    scheduler.add_job(
        deliver, "interval", seconds=2, id="deliver_outbox", max_instances=1, coalesce=True
    )

    async def import_feeds() -> None:
        # Not under an advisory lock either: each due feed is claimed by one process (its
        # next fetch moved ahead with SKIP LOCKED), and fetches run outside transactions.
        from app.sas_bridge.feed_import import import_due_feeds

        assert feed_http is not None
        try:
            counts = await import_due_feeds(factory, feed_http)
            JOB_RUNS.labels("import_feeds", "ok").inc()
            if counts["feeds"]:
                log.info("job done", extra={"job": "import_feeds", **counts})
        except Exception:
            JOB_RUNS.labels("import_feeds", "failed").inc()
            log.exception("agenda feed import failed", extra={"job": "import_feeds"})

    if feed_http is not None:
        scheduler.add_job(
            import_feeds, "interval", seconds=60, id="import_feeds", max_instances=1, coalesce=True
        )
    for spec in registered_jobs():

        async def tick(spec: JobSpec = spec) -> None:
            try:
                await run_exclusive(factory, spec.name, spec.fn)
            except Exception:  # already logged and counted; the next tick retries
                return

        scheduler.add_job(
            tick,
            "interval",
            seconds=spec.seconds,
            id=spec.name,
            max_instances=1,
            coalesce=True,
            next_run_time=None,
        )
    return scheduler
