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
    """Resolve the database (starting the embedded one if needed), bring it to head and load
    the referential of communes into a new one."""
    url = resolve_database_url()
    upgrade_to_head(url)
    asyncio.run(_ensure_communes(url))
    return url


async def _ensure_communes(url: str) -> None:
    from app.directory.communes_load import ensure_loaded

    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        async with make_sessionmaker(engine)() as session:
            await ensure_loaded(session)
            await session.commit()
    finally:
        await engine.dispose()


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


communes_app = typer.Typer(help="The referential of French communes (app/directory/data).")
app.add_typer(communes_app, name="communes")


@communes_app.command("load")
def load_communes(
    path: Annotated[
        Path | None, typer.Option(help="A communes.csv.gz built by scripts/update_communes.py")
    ] = None,
) -> None:
    """Load the vendored referential into the `commune` table (idempotent: an upsert, and the
    communes the file no longer has removed)."""
    import time

    from app.directory import communes_load

    configure_logging("WARNING", "text")
    source = path or communes_load.FILE
    total = sum(1 for _ in communes_load.read(source))

    async def run(session: AsyncSession) -> communes_load.Loaded:
        with typer.progressbar(length=total, label="Loading communes", file=sys.stderr) as bar:
            done = 0

            def advance(count: int) -> None:
                nonlocal done
                bar.update(count - done)
                done = count

            return await communes_load.load(session, source, progress=advance)

    started = time.perf_counter()
    loaded = _in_session(run)
    typer.echo(
        f"{loaded.source}: {loaded.rows} communes, {loaded.changed} added or changed, "
        f"{loaded.removed} removed, in {time.perf_counter() - started:.1f} s"
    )


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

    from app.directory import key_service, schemas
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
        _, secret = await key_service.create_key(session, None, data)
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


mt_app = typer.Typer(help="The médecin traitant queue.")
app.add_typer(mt_app, name="mt")


def _mapping_option(text: str | None) -> dict[str, str] | None:
    """`field=Column,field=Column` (or a JSON object) as field → column header."""
    import json

    if text is None:
        return None
    if text.lstrip().startswith("{"):
        parsed = json.loads(text)
        if isinstance(parsed, dict) and all(isinstance(v, str) for v in parsed.values()):
            return {str(k): v for k, v in parsed.items()}
        raise ValueError("the JSON mapping must be an object of strings")
    pairs = [p.split("=", 1) for p in text.split(",") if p.strip()]
    if any(len(p) != 2 for p in pairs):
        raise ValueError("write it field=Column,field=Column")
    return {name.strip(): column.strip() for name, column in pairs}


@mt_app.command("import-cpam")
def import_cpam(
    file: Annotated[Path, typer.Argument(help="The CSV list (UTF-8 or Windows-1252, ';' or ',')")],
    territory: Annotated[str, typer.Option(help="Territory id")],
    mapping: Annotated[
        str | None,
        typer.Option(
            help="Columns: family_name=NOM,given_name=PRENOM,birth_date=DATE_NAISSANCE,"
            "phone=TELEPHONE[,ins=...,commune_insee=...,postal_code=...,ald=...,"
            "precarity=...] or the same as JSON; left out: guessed from the headers"
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report only, write nothing")] = False,
) -> None:
    """Import the Assurance Maladie's list of patients without a médecin traitant into a
    territory's queue (source assurance_maladie; patients already there are merged)."""
    from app.errors import AppError
    from app.medecin_traitant import cpam_file, cpam_import
    from app.medecin_traitant.schemas import MtImportOut

    configure_logging("WARNING", "text")
    try:
        territory_id = uuid.UUID(territory)
        columns = _mapping_option(mapping)
        data = file.read_bytes()
    except (ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc

    async def run(session: AsyncSession) -> MtImportOut:
        total = len(cpam_file.read(data).rows)
        with typer.progressbar(length=total, label="Importing", file=sys.stderr) as bar:
            return await cpam_import.import_list(
                session, None, data, territory_id=territory_id, mapping=columns,
                dry_run=dry_run, progress=bar.update,
            )  # fmt: skip

    try:
        report = _in_session(run)
    except AppError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from exc
    for error in report.errors:
        typer.echo(f"line {error.line}, {error.field}: {error.message}", err=True)
    typer.echo(
        f"{report.lines} lines ({report.encoding}, '{report.delimiter}'): {report.created} "
        f"created, {report.merged} merged, {report.rejected} rejected"
        + (" (dry run: nothing written)" if dry_run else "")
    )


if __name__ == "__main__":  # pragma: no cover
    app()
