"""The import of an Assurance Maladie list into a territory's médecin traitant queue: each valid
line a request with source `assurance_maladie` (the fund's ALD and C2S flags count at once:
they are the fund's own data, not declared), a patient already in the queue (`same_patient`,
or earlier in the same file) merged into their open request, never a second place. A merge
changes neither the place nor the status: it fills in a missing INS or commune, and an ALD or
precarity the list reports. A dry run does all of it in a savepoint rolled back.

The lines are decided by batches (`cpam_queue`: a few statements a batch) or one by one
(`cpam_lines`: the reference, and the fallback of a batch that meets a concurrent
registration), with the same outcomes, requests and events.

Activity events carry no patient data: `mt.registered` for each request created,
`mt.list_merged` (the names of the fields filled in) for each merge, `mt.list_imported` (the
counts) once. Services flush, never commit."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.service import record, record_many
from app.directory.models import Practice, Territory
from app.errors import ValidationFailed
from app.medecin_traitant import cpam_file, cpam_lines, cpam_queue, schemas
from app.patient_data import PatientOut
from app.security import ADMIN, COORDINATOR, Caller

PREVIEW_LINES = 20
SOURCE = cpam_lines.SOURCE


async def territory_of(
    session: AsyncSession, caller: Caller | None, territory_id: uuid.UUID | None
) -> Territory:
    """The territory imported into: the key's own when it serves one, else the one named
    (the command line, run on the server, names it)."""
    loc = ["query", "territory_id"]
    if caller is not None:
        caller.require(COORDINATOR, ADMIN)
        if territory_id is None:
            if len(caller.territory_ids) != 1:
                raise ValidationFailed.field(loc, "required: this key serves several territories")
            territory_id = next(iter(caller.territory_ids))
        elif not caller.sees_territory(territory_id):
            raise ValidationFailed.field(loc, "unknown territory")
    if territory_id is None:
        raise ValidationFailed.field(loc, "required")
    territory = await session.get(Territory, territory_id)
    if territory is None:
        raise ValidationFailed.field(loc, "unknown territory")
    return territory


async def postal_communes(session: AsyncSession, territory_id: uuid.UUID) -> dict[str, str]:
    """The postal codes of the territory's practices that name one commune."""
    rows = await session.execute(
        select(Practice.postal_code, Practice.commune_insee)
        .where(Practice.territory_id == territory_id, Practice.postal_code.is_not(None))
        .distinct()
    )
    communes: dict[str, set[str]] = defaultdict(set)
    for postal, insee in rows.all():
        if postal is not None:
            communes[postal].add(insee)
    return {postal: next(iter(c)) for postal, c in communes.items() if len(c) == 1}


async def import_list(
    session: AsyncSession,
    caller: Caller | None,
    data: bytes,
    *,
    territory_id: uuid.UUID | None,
    mapping: Mapping[str, str] | None,
    dry_run: bool,
    progress: Callable[[int], object] | None = None,
    batch_lines: int | None = cpam_queue.BATCH_LINES,
) -> schemas.MtImportOut:
    """Read, map and import the list (or, for a dry run, say what an import would do).
    `mapping`: field → column header; None guesses it from the usual headers. `progress` is
    called with the number of lines done since its last call. `batch_lines`: the lines a
    batch decides at once (cpam_queue); None, line by line (cpam_lines: the same outcomes,
    requests and events, in two statements or more a line). UnreadableFile (422) when the
    file or the mapping cannot be used at all; a bad line is only that line's errors."""
    territory = await territory_of(session, caller, territory_id)
    file = cpam_file.read(data)
    used = dict(mapping) if mapping is not None else cpam_file.guess_mapping(file.columns)
    indexes = cpam_file.check_mapping(file.columns, used)
    postal = await postal_communes(session, territory.id)
    parsed = [cpam_file.parse_line(n, cells, indexes, postal) for n, cells in file.rows]
    outcomes: list[cpam_lines.Outcome] = []
    events: list[dict[str, Any]] = []

    async def run() -> None:
        if batch_lines is None:
            done = await cpam_lines.import_lines(
                session, caller, territory.id, parsed, events, progress
            )
        else:
            done = await cpam_queue.import_batches(
                session, caller, territory.id, parsed, events, batch_lines, progress
            )
        outcomes.extend(done)
        if not dry_run:  # one statement for them all
            await record_many(session, events)

    if dry_run:
        savepoint = await session.begin_nested()
        try:
            await run()
        finally:
            await savepoint.rollback()
    else:
        await run()
    counts = {k: sum(o.outcome == k for o in outcomes) for k in ("created", "merged", "rejected")}
    if dry_run:  # the requests it created are gone with the savepoint
        gone = {o.request_id for o in outcomes if o.outcome == "created"}
        for o in outcomes:
            o.request_id = None if o.request_id in gone else o.request_id
    if not dry_run:
        await record(
            session,
            "mt.list_imported",
            territory_id=territory.id,
            actor_key_id=caller.key_id if caller else None,
            source=SOURCE,
            lines=len(parsed),
            bytes=len(data),
            created=counts["created"],
            merged=counts["merged"],
            rejected=counts["rejected"],
        )
    preview = [
        schemas.ImportLine(
            line=p.line,
            outcome=o.outcome,
            request_id=o.request_id,
            patient=PatientOut(**p.patient.model_dump()) if p.patient else None,
            ald=p.ald,
            precarity=p.precarity,
            notes=p.notes,
        )
        for p, o in zip(parsed[:PREVIEW_LINES], outcomes, strict=False)
    ]
    return schemas.MtImportOut(
        dry_run=dry_run,
        territory_id=territory.id,
        encoding=file.encoding,
        delimiter=file.delimiter,
        columns=file.columns,
        mapping={name: file.columns[i] for name, i in indexes.items()},
        lines=len(parsed),
        merged_lines=[
            p.line for p, o in zip(parsed, outcomes, strict=True) if o.outcome == "merged"
        ],
        errors=[
            schemas.ImportLineError(line=e.line, field=e.field, message=e.message)
            for o in outcomes
            for e in o.errors
        ],
        preview=preview,
        **counts,
    )
