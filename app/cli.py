"""The `creneau` command."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.db import make_engine, make_sessionmaker, resolve_database_url
from app.logging_setup import configure_logging
from app.migrate import upgrade_to_head

app = typer.Typer(help="Créneau: SNP slots, SAS booking and the médecin traitant queue.")
T = TypeVar("T")


def _database() -> str:
    """Resolve the database (starting the embedded one if needed) and bring it to head."""
    url = resolve_database_url()
    upgrade_to_head(url)
    return url


def _in_session(fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    url = _database()

    async def run() -> T:
        engine = make_engine(url, pool_size=2, max_overflow=0)
        try:
            async with make_sessionmaker(engine)() as session:
                result = await fn(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(run())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
) -> None:
    """Run the HTTP service (embedded PostgreSQL when DATABASE_URL is unset); HTTPS with
    client certificates when TLS_CERT is set (docs/sas-mtls.md)."""
    import logging
    import shutil
    import tempfile

    import uvicorn

    from app.metrics import MULTIPROCESS_DIR, share_between_workers
    from app.tls_server import uvicorn_options

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    _database()  # migrate once here, before the workers start
    logging.getLogger("creneau.serve").info(
        "inbound TLS",
        extra={
            "tls": settings.tls_cert is not None,
            "client_certificates": settings.tls_client_cert if settings.tls_client_ca else "off",
            "sas_platform_subjects": {
                p.text: str(p.identity) for p in settings.sas_platform_subjects
            },
            "trusted_proxies": [str(n) for n in settings.trusted_proxies],
        },
    )
    scheme = "https" if settings.tls_cert is not None else "http"
    base = f"{scheme}://{host}:{port}"
    logging.getLogger("creneau.serve").info(
        f"Créneau listens on {base}: pages at {base}/connexion, API docs at {base}/docs",
        extra={"url": base},
    )
    shared_metrics = None
    if workers > 1 and not os.environ.get(MULTIPROCESS_DIR):
        shared_metrics = Path(tempfile.mkdtemp(prefix="creneau-metrics-"))
        share_between_workers(shared_metrics)
    try:
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            **uvicorn_options(settings),
        )
    finally:
        if shared_metrics is not None:
            shutil.rmtree(shared_metrics, ignore_errors=True)


@app.command()
def migrate() -> None:
    """Apply the database migrations."""
    configure_logging(get_settings().log_level, "text")
    _database()
    typer.echo("database is at the latest migration")


@app.command("create-key")
def create_key(
    role: Annotated[
        str, typer.Option(help="admin, coordinator, practice, regulator, dashboard, sas_platform")
    ],
    name: Annotated[str, typer.Option(help="Who the key is for")],
    territory: Annotated[str | None, typer.Option(help="Territory id")] = None,
    practice: Annotated[str | None, typer.Option(help="Practice id")] = None,
    regulator: Annotated[str | None, typer.Option(help="Regulator (SAS) id")] = None,
) -> None:
    """Create an API key and print it once."""
    from pydantic import ValidationError

    from app.directory import schemas, service
    from app.errors import AppError

    configure_logging("WARNING", "text")
    try:
        data = schemas.KeyIn(
            role=role,
            name=name,
            territory_id=uuid.UUID(territory) if territory else None,
            practice_id=uuid.UUID(practice) if practice else None,
            regulator_id=uuid.UUID(regulator) if regulator else None,
        )
    except (ValidationError, ValueError) as exc:
        typer.echo(f"invalid key request: {exc}", err=True)
        raise typer.Exit(2) from exc

    async def run(session: AsyncSession) -> str:
        _, secret = await service.create_key(session, None, data)
        return secret

    try:
        secret = _in_session(run)
    except AppError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(secret)


@app.command("seed-demo")
def seed_demo(
    env_file: Annotated[
        Path | None,
        typer.Option(help="Also write the ids and keys as shell variables to this file"),
    ] = None,
) -> None:
    """Create a realistic demo territory (practices, GPs, rules, a SAS) and print its keys."""
    from app.demo import env_file_text, seed

    configure_logging("WARNING", "text")
    keys = _in_session(seed)
    for label, secret in keys.items():
        typer.echo(f"{label}: {secret}")
    if env_file is not None:
        env_file.parent.mkdir(parents=True, exist_ok=True)
        env_file.touch(mode=0o600)  # keys are secrets: readable by their owner only
        env_file.write_text(env_file_text(keys))
        typer.echo(f"shell variables written to {env_file} (. {env_file})")


@app.command()
def materialize(
    days: Annotated[int | None, typer.Option(help="Horizon in days (default HORIZON_DAYS)")] = None,
) -> None:
    """Extend every availability rule's slots to the horizon now (what the job does hourly)."""
    from sqlalchemy import func, select

    from app.jobs import materialize_by_hand
    from app.scheduling.models import AvailabilityRule

    configure_logging("WARNING", "text")

    async def run(session: AsyncSession) -> dict[str, int]:
        total = await session.scalar(select(func.count()).select_from(AvailabilityRule)) or 0
        with typer.progressbar(length=total, label="Expanding rules", file=sys.stderr) as bar:
            return await materialize_by_hand(session, horizon_days=days, progress=bar.update)

    result = _in_session(run)
    typer.echo(
        f"{result['rules']} rules, {result['slots_created']} slots created, "
        f"{result['skipped']} skipped (already there or overlapping)"
    )


@app.command("import-feeds")
def import_feeds(
    all_feeds: Annotated[
        bool, typer.Option("--all", help="Every active feed now, not only the due ones")
    ] = False,
) -> None:
    """Fetch the agenda feeds that are due (what the job does every minute)."""
    from sqlalchemy import func, select, update

    from app.clock import now_utc
    from app.sas_bridge.feed_fetch import feed_client
    from app.sas_bridge.feed_import import import_due_feeds
    from app.sas_bridge.feed_models import AgendaFeed

    configure_logging("WARNING", "text")
    url = _database()

    async def run() -> dict[str, int]:
        engine = make_engine(url, pool_size=4, max_overflow=0)
        factory = make_sessionmaker(engine)
        totals = {"feeds": 0, "ok": 0, "not_modified": 0, "failed": 0}
        try:
            async with factory() as session:
                if all_feeds:
                    await session.execute(
                        update(AgendaFeed).where(AgendaFeed.active).values(next_fetch_at=now_utc())
                    )
                due = await session.scalar(
                    select(func.count())
                    .select_from(AgendaFeed)
                    .where(AgendaFeed.active, AgendaFeed.next_fetch_at <= now_utc())
                )
                await session.commit()
            async with feed_client() as http:
                with typer.progressbar(length=due or 0, label="Importing", file=sys.stderr) as bar:
                    while True:
                        counts = await import_due_feeds(factory, http, batch=20)
                        if not counts["feeds"]:
                            return totals
                        bar.update(counts["feeds"])
                        for name, value in counts.items():
                            totals[name] += value
        finally:
            await engine.dispose()

    result = asyncio.run(run())
    typer.echo(
        f"{result['feeds']} feeds: {result['ok']} imported, {result['not_modified']} unchanged, "
        f"{result['failed']} failed"
    )


if __name__ == "__main__":  # pragma: no cover
    app()
