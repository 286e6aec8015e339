"""The import of an Assurance Maladie list in batches of lines: the same decisions as
`cpam_lines` (the reference), in a few statements a batch instead of two or more a line.

Each batch runs in a savepoint: one SELECT finds, and locks, every open request of the
territory that matches any line of the batch (same INS, or lower(name), lower(given name),
birth date and phone, as `same_patient` compares them); the lines are then decided in Python
in file order against those requests as the earlier lines leave them (a line matching two
requests is rejected, one is merged into, none creates a request that later lines of the file
merge into); one INSERT … ON CONFLICT DO NOTHING RETURNING writes the requests created, one
UPDATE … FROM unnest the fields merges filled in. A request for the same patient registered by
someone else since the lookup (an insert skipped by a conflict, or an INS taken: a unique
violation) rolls the savepoint back and the batch is replayed line by line.

Names are compared as PostgreSQL lowers them (the lookup returns lower() of each request's
names and of each line's), so that Python decides exactly as the line path's SQL would.
Services flush, never commit."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import ARRAY, Boolean, Date, DateTime, String, bindparam, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from app.medecin_traitant import cpam_lines
from app.medecin_traitant.cpam_file import ParsedLine
from app.medecin_traitant.cpam_lines import Outcome
from app.medecin_traitant.models import MtRequest
from app.medecin_traitant.service import event_row
from app.patient_data import PatientIn
from app.security import Caller

BATCH_LINES = 500

# One row per line (`n`, from 1, in the order sent) with lower() of its names, joined to each
# open request it matches (none: NULLs), which is locked. The status is written inline, as in
# same_patient: the plan then probes the two partial unique indexes for each line.
_LOOKUP = text(
    """
    SELECT l.n, lower(l.family_name) AS line_family, lower(l.given_name) AS line_given,
           m.id, m.family_key, m.given_key, m.patient_birth_date, m.patient_phone,
           m.patient_ins, m.patient_commune_insee, m.ald, m.precarity, m.criteria_to_check,
           m.source, m.proposed_practitioner_id, m.attached_practitioner_id
    FROM unnest(:family_names, :given_names, :family_keys, :given_keys, :birth_dates, :phones,
                :ins) WITH ORDINALITY
         AS l(family_name, given_name, family_key, given_key, birth_date, phone, ins, n)
    LEFT JOIN LATERAL (
        SELECT r.id, lower(r.patient_family_name) AS family_key,
               lower(r.patient_given_name) AS given_key, r.patient_birth_date, r.patient_phone,
               r.patient_ins, r.patient_commune_insee, r.ald, r.precarity, r.criteria_to_check,
               r.source, r.proposed_practitioner_id, r.attached_practitioner_id
        FROM mt_request r
        WHERE r.territory_id = :territory_id
          AND r.status <> 'withdrawn'
          AND ((r.patient_ins IS NOT NULL AND r.patient_ins = l.ins)
               OR (lower(r.patient_family_name) = l.family_key
                   AND lower(r.patient_given_name) = l.given_key
                   AND r.patient_birth_date = l.birth_date
                   AND r.patient_phone = l.phone))
        FOR UPDATE OF r
    ) m ON true
    """
).bindparams(
    bindparam("territory_id", type_=Uuid),
    bindparam("family_names", type_=ARRAY(String)),
    bindparam("given_names", type_=ARRAY(String)),
    bindparam("family_keys", type_=ARRAY(String)),
    bindparam("given_keys", type_=ARRAY(String)),
    bindparam("birth_dates", type_=ARRAY(Date)),
    bindparam("phones", type_=ARRAY(String)),
    bindparam("ins", type_=ARRAY(String)),
)

# The requests created (cpam_lines.request_values: their preferred communes always empty).
_INSERT = text(
    """
    INSERT INTO mt_request (id, territory_id, status, source, ald, precarity, criteria_to_check,
                            registered_at, created_by_key_id, preferred_communes,
                            patient_family_name, patient_given_name, patient_birth_date,
                            patient_phone, patient_ins, patient_commune_insee)
    SELECT n.id, n.territory_id, n.status, n.source, n.ald, n.precarity, n.criteria_to_check,
           n.registered_at, n.created_by_key_id, '{}', n.family_name, n.given_name,
           n.birth_date, n.phone, n.ins, n.commune
    FROM unnest(:ids, :territory_ids, :statuses, :sources, :alds, :precarities, :to_check,
                :registered_ats, :key_ids, :family_names, :given_names, :birth_dates,
                :phones, :ins, :communes)
         AS n(id, territory_id, status, source, ald, precarity, criteria_to_check,
              registered_at, created_by_key_id, family_name, given_name, birth_date, phone,
              ins, commune)
    ON CONFLICT DO NOTHING
    RETURNING id
    """
).bindparams(
    bindparam("ids", type_=ARRAY(Uuid)),
    bindparam("territory_ids", type_=ARRAY(Uuid)),
    bindparam("statuses", type_=ARRAY(String)),
    bindparam("sources", type_=ARRAY(String)),
    bindparam("alds", type_=ARRAY(Boolean)),
    bindparam("precarities", type_=ARRAY(Boolean)),
    bindparam("to_check", type_=ARRAY(Boolean)),
    bindparam("registered_ats", type_=ARRAY(DateTime(timezone=True))),
    bindparam("key_ids", type_=ARRAY(Uuid)),
    bindparam("family_names", type_=ARRAY(String)),
    bindparam("given_names", type_=ARRAY(String)),
    bindparam("birth_dates", type_=ARRAY(Date)),
    bindparam("phones", type_=ARRAY(String)),
    bindparam("ins", type_=ARRAY(String)),
    bindparam("communes", type_=ARRAY(String)),
)

# What the merges filled in, one row per request (its state after the batch's last line).
_UPDATE = text(
    """
    UPDATE mt_request AS r
    SET patient_commune_insee = u.commune, ald = u.ald, precarity = u.precarity,
        patient_ins = u.ins, updated_at = now()
    FROM unnest(:ids, :communes, :alds, :precarities, :ins) AS u(id, commune, ald, precarity, ins)
    WHERE r.id = u.id
    """
).bindparams(
    bindparam("ids", type_=ARRAY(Uuid)),
    bindparam("communes", type_=ARRAY(String)),
    bindparam("alds", type_=ARRAY(Boolean)),
    bindparam("precarities", type_=ARRAY(Boolean)),
    bindparam("ins", type_=ARRAY(String)),
)

_Identity = tuple[str, str, date, str]


class _Queue:
    """The open requests a batch may touch (those its lookup found, those it creates), as the
    lines decided so far leave them: `MtRequest`s never added to the session."""

    def __init__(self) -> None:
        self.requests: dict[uuid.UUID, MtRequest] = {}
        self.created: list[MtRequest] = []
        self._new: set[uuid.UUID] = set()
        self.changed: dict[uuid.UUID, MtRequest] = {}
        self._by_ins: dict[str, uuid.UUID] = {}
        self._by_identity: dict[_Identity, uuid.UUID] = {}

    def add(self, r: MtRequest, family_key: str | None, given_key: str | None) -> None:
        """`family_key`, `given_key`: the names as PostgreSQL's lower() gives them. Two
        requests with one key would break a unique index: the insert skips the second, and
        the batch is replayed line by line."""
        self.requests[r.id] = r
        if r.patient_ins is not None:
            self._by_ins[r.patient_ins] = r.id
        if family_key is not None and given_key is not None:
            assert r.patient_birth_date is not None and r.patient_phone is not None
            self._by_identity[family_key, given_key, r.patient_birth_date, r.patient_phone] = r.id

    def create(self, r: MtRequest, family_key: str, given_key: str) -> None:
        self.add(r, family_key, given_key)
        self.created.append(r)
        self._new.add(r.id)

    def matching(self, patient: PatientIn) -> set[uuid.UUID]:
        """same_patient's decision: the same INS, or the same names (the line's lowered by
        Python, as same_patient does), birth date and phone."""
        identity = (
            patient.family_name.lower(),
            patient.given_name.lower(),
            patient.birth_date,
            patient.phone,
        )
        found = {self._by_identity.get(identity)}
        if patient.ins:
            found.add(self._by_ins.get(patient.ins))
        return {i for i in found if i is not None}

    def merge(self, r: MtRequest, p: ParsedLine) -> list[str]:
        """cpam_lines._merge on the request in memory: the names of the fields filled in."""
        assert p.patient is not None
        filled = cpam_lines.fill_in(r, p)
        if r.patient_ins is None and p.patient.ins and p.patient.ins not in self._by_ins:
            r.patient_ins = p.patient.ins
            self._by_ins[p.patient.ins] = r.id
            filled.append("ins")
        if filled and r.id not in self._new:
            self.changed[r.id] = r
        return filled


async def _lookup(
    session: AsyncSession, territory_id: uuid.UUID, patients: Sequence[PatientIn]
) -> tuple[_Queue, list[tuple[str, str]]]:
    """The open requests matching any of `patients`, locked; and each patient's names as
    PostgreSQL lowers them."""
    rows = (
        await session.execute(
            _LOOKUP,
            {
                "territory_id": territory_id,
                "family_names": [p.family_name for p in patients],
                "given_names": [p.given_name for p in patients],
                "family_keys": [p.family_name.lower() for p in patients],
                "given_keys": [p.given_name.lower() for p in patients],
                "birth_dates": [p.birth_date for p in patients],
                "phones": [p.phone for p in patients],
                "ins": [p.ins for p in patients],
            },
        )
    ).all()
    queue = _Queue()
    keys: list[tuple[str, str]] = [("", "")] * len(patients)
    for row in rows:
        keys[row.n - 1] = (row.line_family, row.line_given)
        if row.id is not None and row.id not in queue.requests:
            r = MtRequest(
                id=row.id,
                territory_id=territory_id,
                patient_birth_date=row.patient_birth_date,
                patient_phone=row.patient_phone,
                patient_ins=row.patient_ins,
                patient_commune_insee=row.patient_commune_insee,
                ald=row.ald,
                precarity=row.precarity,
                criteria_to_check=row.criteria_to_check,
                source=row.source,
                proposed_practitioner_id=row.proposed_practitioner_id,
                attached_practitioner_id=row.attached_practitioner_id,
            )
            queue.add(r, row.family_key, row.given_key)
    return queue, keys


def _decide(
    queue: _Queue,
    caller: Caller | None,
    territory_id: uuid.UUID,
    p: ParsedLine,
    keys: tuple[str, str] | None,
    events: list[dict[str, Any]],
) -> Outcome:
    """cpam_lines.apply's decision for one line, against the batch's requests in memory."""
    if p.patient is None or keys is None:
        return Outcome("rejected", None, p.errors)
    found = queue.matching(p.patient)
    if len(found) > 1:  # one by the INS, another by name, birth date and phone
        return cpam_lines.ambiguous(p)
    if found:
        r = queue.requests[found.pop()]
        filled = queue.merge(r, p)
        events.append(event_row(caller, "mt.list_merged", r, filled=filled))
        return Outcome("merged", r.id, [])
    r = MtRequest(**cpam_lines.request_values(caller, territory_id, p))
    events.append(event_row(caller, "mt.registered", r))
    queue.create(r, *keys)
    return Outcome("created", r.id, [])


async def _write(session: AsyncSession, queue: _Queue) -> bool:
    """The batch's requests created and merges' fields filled in; False when a registration
    of the same patient since the lookup made the insert skip one (then nothing counts)."""
    created = queue.created
    if created:
        inserted = (
            await session.scalars(
                _INSERT,
                {
                    "ids": [r.id for r in created],
                    "territory_ids": [r.territory_id for r in created],
                    "statuses": [r.status for r in created],
                    "sources": [r.source for r in created],
                    "alds": [r.ald for r in created],
                    "precarities": [r.precarity for r in created],
                    "to_check": [r.criteria_to_check for r in created],
                    "registered_ats": [r.registered_at for r in created],
                    "key_ids": [r.created_by_key_id for r in created],
                    "family_names": [r.patient_family_name for r in created],
                    "given_names": [r.patient_given_name for r in created],
                    "birth_dates": [r.patient_birth_date for r in created],
                    "phones": [r.patient_phone for r in created],
                    "ins": [r.patient_ins for r in created],
                    "communes": [r.patient_commune_insee for r in created],
                },
            )
        ).all()
        if len(inserted) != len(created):
            return False
    changed = list(queue.changed.values())
    if changed:  # an INS taken since the lookup: IntegrityError
        await session.execute(
            _UPDATE,
            {
                "ids": [r.id for r in changed],
                "communes": [r.patient_commune_insee for r in changed],
                "alds": [r.ald for r in changed],
                "precarities": [r.precarity for r in changed],
                "ins": [r.patient_ins for r in changed],
            },
        )
    return True


async def _batch(
    session: AsyncSession,
    caller: Caller | None,
    territory_id: uuid.UUID,
    batch: list[ParsedLine],
    events: list[dict[str, Any]],
) -> list[Outcome]:
    """One batch in a savepoint; replayed line by line when it met a concurrent
    registration of one of its patients."""
    valid = [p.patient for p in batch if p.patient is not None]
    if not valid:
        return [Outcome("rejected", None, p.errors) for p in batch]
    savepoint = await session.begin_nested()
    try:
        queue, keys = await _lookup(session, territory_id, valid)
        line_keys = iter(keys)
        batch_events: list[dict[str, Any]] = []
        outcomes = [
            _decide(queue, caller, territory_id, p, next(line_keys) if p.patient else None,
                    batch_events)
            for p in batch
        ]  # fmt: skip
        written = await _write(session, queue)
    except IntegrityError:
        written = False
    except BaseException:
        await savepoint.rollback()
        raise
    if written:
        await savepoint.commit()
        events.extend(batch_events)
        return outcomes
    await savepoint.rollback()
    return [await cpam_lines.apply(session, caller, territory_id, p, events) for p in batch]


async def import_batches(
    session: AsyncSession,
    caller: Caller | None,
    territory_id: uuid.UUID,
    parsed: list[ParsedLine],
    events: list[dict[str, Any]],
    batch_lines: int = BATCH_LINES,
    progress: Callable[[int], object] | None = None,
) -> list[Outcome]:
    """The lines by batches of `batch_lines`, in file order, their events appended to
    `events`; `progress` is called with the number of lines of each batch done."""
    if batch_lines < 1:
        raise ValueError("batch_lines must be at least 1")
    outcomes: list[Outcome] = []
    for start in range(0, len(parsed), batch_lines):
        batch = parsed[start : start + batch_lines]
        outcomes.extend(await _batch(session, caller, territory_id, batch, events))
        if progress is not None:
            progress(len(batch))
    return outcomes
