"""Loading the referential of French communes (app/directory/data/communes.csv.gz, see its
README) into the `commune` table: one COPY into a temporary table, then an upsert and the
removal of the communes the file no longer has. Idempotent: loading the same file twice
changes nothing. Run when the table is empty (start-up, `creneau migrate`, `seed-demo`, the
tests' database) and by `creneau communes load` after a refresh of the file."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import exists, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory.communes import name_key
from app.directory.models import CommuneRecord

DATA = Path(__file__).resolve().parent / "data"
FILE = DATA / "communes.csv.gz"
CHUNK = 5000
Row = tuple[str, str, str, str, list[str], int | None]
_COLUMNS = ("insee", "name", "name_key", "departement", "postal_codes", "population")


@dataclass(frozen=True)
class Loaded:
    source: str  # the package and version the file was built from
    rows: int
    changed: int  # inserted or updated
    removed: int


def source() -> str:
    version = DATA / "VERSION"
    return version.read_text().strip() if version.exists() else FILE.name


def read(path: Path = FILE) -> Iterator[Row]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            yield (
                r["insee"],
                r["name"],
                name_key(r["name"]),
                r["departement"],
                r["postal_codes"].split(),
                int(r["population"]) if r["population"] else None,
            )


async def load(
    session: AsyncSession,
    path: Path = FILE,
    progress: Callable[[int], None] | None = None,
) -> Loaded:
    """Replace the table's content by the file's (in the session's transaction: flushes,
    never commits). `progress` is told how many rows are copied so far."""
    await session.execute(
        text("CREATE TEMP TABLE commune_load (LIKE commune INCLUDING DEFAULTS) ON COMMIT DROP")
    )
    conn = await session.connection()
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    rows = list(read(path))
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        await raw.copy_records_to_table("commune_load", records=chunk, columns=_COLUMNS)
        if progress is not None:
            progress(start + len(chunk))
    updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
    changed = await session.execute(
        text(
            f"INSERT INTO commune ({', '.join(_COLUMNS)}) "  # noqa: S608 -- constant names
            f"SELECT {', '.join(_COLUMNS)} FROM commune_load "
            f"ON CONFLICT (insee) DO UPDATE SET {updates} "
            "WHERE (commune.*) IS DISTINCT FROM (excluded.*)"
        )
    )
    removed = await session.execute(
        text(
            "DELETE FROM commune c WHERE NOT EXISTS "
            "(SELECT FROM commune_load l WHERE l.insee = c.insee)"
        )
    )
    await session.execute(text("DROP TABLE commune_load"))
    return Loaded(source(), len(rows), changed.rowcount, removed.rowcount)  # type: ignore[attr-defined]


async def ensure_loaded(session: AsyncSession) -> Loaded | None:
    """Load the file when the table is empty (a new database); None when it was not."""
    if await session.scalar(select(exists().select_from(CommuneRecord))):
        return None
    return await load(session)


@cache
def vendored_names() -> dict[str, str]:
    """INSEE code → name from the vendored file (the table's source), for the templates that
    show a code without a database session at hand (read once per process, ~35,000 names)."""
    return {insee: name for insee, name, *_ in read()}
