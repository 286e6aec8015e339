"""The import of an Assurance Maladie list line by line: the reference the batches of
`cpam_queue` must agree with, and their fallback when a batch meets a concurrent registration.
Each line costs two statements or more (the lookup, locking what it finds, then the insert or
the merge). Services flush, never commit."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import now_utc
from app.medecin_traitant.cpam_file import LineError, ParsedLine
from app.medecin_traitant.models import MtRequest
from app.medecin_traitant.service import event_row, same_patient
from app.patient_data import patient_columns
from app.security import Caller

SOURCE = "assurance_maladie"
AMBIGUOUS = (
    "Ce patient correspond à deux demandes différentes de la file (l'une par l'INS, l'autre "
    "par le nom, la date de naissance et le téléphone) : à vérifier à la main."
)


@dataclass
class Outcome:
    outcome: str
    request_id: uuid.UUID | None
    errors: list[LineError]


def ambiguous(p: ParsedLine) -> Outcome:
    return Outcome("rejected", None, [LineError(p.line, "_line", AMBIGUOUS)])


def request_values(caller: Caller | None, territory_id: uuid.UUID, p: ParsedLine) -> dict[str, Any]:
    """The columns of the request a valid line creates."""
    assert p.patient is not None
    return {
        "id": uuid.uuid4(),
        "territory_id": territory_id,
        "status": "waiting",
        "source": SOURCE,
        "ald": p.ald,
        "precarity": p.precarity,
        "criteria_to_check": False,
        "registered_at": now_utc(),
        "created_by_key_id": caller.key_id if caller else None,
        "preferred_communes": [],
        **patient_columns(p.patient),
    }


def fill_in(r: MtRequest, p: ParsedLine) -> list[str]:
    """What the line adds to the request already there, but its INS (whose uniqueness each
    path checks its own way), never its place, source or status: the names of the fields
    filled in."""
    assert p.patient is not None
    filled = []
    if r.patient_commune_insee is None and p.patient.commune_insee:
        r.patient_commune_insee = p.patient.commune_insee
        filled.append("commune_insee")
    if p.ald and not r.ald:
        r.ald = True
        filled.append("ald")
    if p.precarity and not r.precarity:
        r.precarity = True
        filled.append("precarity")
    return filled


async def _merge(session: AsyncSession, r: MtRequest, p: ParsedLine) -> list[str]:
    """What the list adds to the request already there (`fill_in`, then its INS when no
    other request holds it): the names of the fields filled in."""
    assert p.patient is not None
    filled = fill_in(r, p)
    if filled:
        await session.flush()
    if r.patient_ins is None and p.patient.ins:
        try:  # another request taking this INS at this instant: left as it was
            async with session.begin_nested():
                r.patient_ins = p.patient.ins
                await session.flush()
            filled.append("ins")
        except IntegrityError:
            await session.refresh(r)
    return filled


async def apply(
    session: AsyncSession,
    caller: Caller | None,
    territory_id: uuid.UUID,
    p: ParsedLine,
    events: list[dict[str, Any]],
) -> Outcome:
    """The line's request, created, or merged into the patient's open request: two
    statements a line (the lookup, locking what it finds, and the insert, which yields to a
    registration of the same patient at this instant: then the line merges into it)."""
    patient = p.patient
    if patient is None:
        return Outcome("rejected", None, p.errors)
    for _ in range(2):
        found = (
            await session.scalars(
                select(MtRequest)
                .where(*same_patient(territory_id, patient))
                .order_by(MtRequest.registered_at, MtRequest.id)
                .limit(2)
                .with_for_update()
                # A batch (cpam_queue) may have changed these rows without the ORM.
                .execution_options(populate_existing=True)
            )
        ).all()
        if len(found) > 1:  # one by the INS, another by name, birth date and phone
            break
        if found:
            filled = await _merge(session, found[0], p)
            events.append(event_row(caller, "mt.list_merged", found[0], filled=filled))
            return Outcome("merged", found[0].id, [])
        values = request_values(caller, territory_id, p)
        created = await session.scalar(
            insert(MtRequest).values(**values).on_conflict_do_nothing().returning(MtRequest.id)
        )
        if created is not None:
            events.append(event_row(caller, "mt.registered", MtRequest(**values)))
            return Outcome("created", created, [])
    return ambiguous(p)


async def import_lines(
    session: AsyncSession,
    caller: Caller | None,
    territory_id: uuid.UUID,
    parsed: list[ParsedLine],
    events: list[dict[str, Any]],
    progress: Callable[[int], object] | None = None,
) -> list[Outcome]:
    """Each line in file order, its events appended to `events`; `progress(1)` a line."""
    outcomes = []
    for p in parsed:
        outcomes.append(await apply(session, caller, territory_id, p, events))
        if progress is not None:
            progress(1)
    return outcomes
