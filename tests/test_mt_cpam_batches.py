"""The Assurance Maladie's list imported in batches (app.medecin_traitant.cpam_queue): the
same outcomes, requests and events as line by line (cpam_lines, the reference), in a few
statements a batch."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.activity.models import ActivityEvent
from app.clock import now_utc
from app.directory.models import Territory
from app.medecin_traitant import cpam_lines, cpam_queue
from app.medecin_traitant.cpam_import import import_list
from app.medecin_traitant.models import MtRequest
from tests.conftest import ADMIN_CALLER, statements

HEADER = "NOM;PRENOM;DATE_NAISSANCE;TELEPHONE;NIR;CODE_INSEE;ALD;C2S"
FAMILY = ("Dupont", "Lefèvre", "Müller", "Œuvray", "Martin")
GIVEN = ("Hélène", "Jérôme", "Zoé", "Noël", "Ève")
MT_EVENTS = ("mt.registered", "mt.list_merged", "mt.list_imported")


def ins_of(i: int) -> str:
    body = f"1800175{i:06d}"
    return f"{body}{97 - int(body) % 97:02d}"


def person(i: int) -> dict[str, Any]:
    return {
        "patient_family_name": FAMILY[i],
        "patient_given_name": GIVEN[i],
        "patient_birth_date": date(1950 + 10 * i, 3, 4),  # the first ones aged 70 or more
        "patient_phone": f"+336112233{40 + i}",
    }


def csv_line(i: int, ins: int | None, case: int, commune: str, ald: bool, c2s: bool,
             bad: bool = False) -> str:  # fmt: skip
    p = person(i)
    names = [p["patient_family_name"], p["patient_given_name"]]
    names = [(str, str.upper, str.lower)[case](n) for n in names]
    born = p["patient_birth_date"]
    phone = "" if bad else (f"06 11 22 33 {40 + i}" if case else f"06112233{40 + i}")
    return ";".join(
        [*names, f"{born:%d/%m/%Y}", phone, "" if ins is None else ins_of(ins), commune,
         "1" if ald else "", "oui" if c2s else ""]
    )  # fmt: skip


def csv_file(lines: list[str]) -> bytes:
    return ("\r\n".join([HEADER, *lines]) + "\r\n").encode("cp1252")


async def new_territory(session) -> uuid.UUID:
    t = Territory(name="CPTS Lots", timezone="Europe/Paris", department="15")
    session.add(t)
    await session.flush()
    return t.id


async def seed(session, territory_id: uuid.UUID, i: int, kind: str, ald: bool = False) -> None:
    """A request of person `i` already in the queue: by `identity` (no INS), `identity_ins`,
    `ins_other` (the INS, another phone), or `withdrawn` (identity, no longer open)."""
    values = person(i)
    if kind in ("identity_ins", "ins_other"):
        values["patient_ins"] = ins_of(i)
    if kind == "ins_other":
        values["patient_phone"] = f"+337998877{40 + i}"
    session.add(
        MtRequest(
            territory_id=territory_id, status="withdrawn" if kind == "withdrawn" else "waiting",
            source="hotline", ald=ald, precarity=False, criteria_to_check=False,
            registered_at=now_utc() - timedelta(days=30 + i), preferred_communes=[], **values,
        )
    )  # fmt: skip
    await session.flush()


def request_key(r: MtRequest) -> tuple[Any, ...]:
    return (r.patient_family_name, r.patient_given_name, r.patient_birth_date, r.patient_phone,
            r.status)  # fmt: skip


async def state(session, territory_id: uuid.UUID) -> tuple[list[Any], list[Any], dict]:
    """The territory's requests and MT events, with each request's id replaced by its
    patient (ids are random): comparable between two territories."""
    rows = (
        await session.scalars(
            select(MtRequest)
            .where(MtRequest.territory_id == territory_id)
            .execution_options(populate_existing=True)
        )
    ).all()
    names = {r.id: request_key(r) for r in rows}
    requests = sorted(
        (request_key(r), r.patient_ins, r.patient_commune_insee, r.source, r.ald, r.precarity,
         r.criteria_to_check, r.registered_at, r.created_by_key_id, r.preferred_communes)
        for r in rows
    )  # fmt: skip
    events = (
        await session.scalars(
            select(ActivityEvent)
            .where(ActivityEvent.territory_id == territory_id, ActivityEvent.type.in_(MT_EVENTS))
            .order_by(ActivityEvent.id)
        )
    ).all()
    logged = [(e.type, names.get(e.subject_id), e.actor_key_id, e.data) for e in events]
    return requests, logged, names


def report(out, names: dict) -> dict[str, Any]:
    body = out.model_dump(exclude={"territory_id"})
    for line in body["preview"]:
        line["request_id"] = names.get(line["request_id"], line["request_id"])
    return body


QUEUES = [(), ("identity",), ("identity_ins",), ("ins_other",), ("identity", "ins_other"),
          ("withdrawn",), ("withdrawn", "identity")]  # fmt: skip
line_st = st.tuples(
    st.integers(0, 4),  # the person
    st.sampled_from([None, "own", "next"]),  # their INS, another person's, or none
    st.integers(0, 2),  # names as written, upper or lower case
    st.sampled_from(["", "15014", "15187"]),
    st.booleans(),
    st.booleans(),
    st.integers(0, 9),  # 0: a bad line (no phone)
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    queue=st.lists(st.tuples(st.sampled_from(QUEUES), st.booleans()), min_size=5, max_size=5),
    lines=st.lists(line_st, max_size=12),
)
async def test_batches_decide_every_line_as_the_line_path_does(session, clock, queue, lines):
    data = csv_file(
        [csv_line(i, None if ins is None else i if ins == "own" else (i + 1) % 5, case, commune,
                  ald, c2s, bad=not ok) for i, ins, case, commune, ald, c2s, ok in lines]
    )  # fmt: skip
    nested = await session.begin_nested()
    try:
        territories = (await new_territory(session), await new_territory(session))
        for t in territories:
            for i, (kinds, ald) in enumerate(queue):
                for kind in kinds:
                    await seed(session, t, i, kind, ald)
        for dry_run in (True, False):
            seen = []
            for t, batch_lines in zip(territories, (None, 3), strict=True):
                out = await import_list(
                    session, ADMIN_CALLER, data, territory_id=t, mapping=None,
                    dry_run=dry_run, batch_lines=batch_lines,
                )  # fmt: skip
                requests, logged, names = await state(session, t)
                seen.append((report(out, names), requests, logged))
            assert seen[0] == seen[1]
    finally:
        await nested.rollback()


async def test_a_thousand_lines_take_fewer_than_thirty_statements(session, connection):
    t = await new_territory(session)
    for i in range(0, 1000, 5):  # 200 patients already in the queue
        session.add(
            MtRequest(
                territory_id=t, status="waiting", source="hotline", ald=False, precarity=False,
                criteria_to_check=False, registered_at=now_utc(), preferred_communes=[],
                patient_family_name=f"NOM{i}", patient_given_name="Prénom",
                patient_birth_date=date(1960, 1, 1), patient_phone=f"+33611{i:06d}",
            )
        )  # fmt: skip
    await session.flush()
    data = csv_file([f"NOM{i};Prénom;01/01/1960;0611{i:06d};;15014;{i % 2};" for i in range(1000)])
    with statements(connection) as seen:
        out = await import_list(
            session, ADMIN_CALLER, data, territory_id=t, mapping=None, dry_run=False
        )
    assert (out.created, out.merged, out.rejected) == (800, 200, 0)
    assert len(seen) < 30, seen
    count = select(func.count()).where(MtRequest.territory_id == t)
    assert await session.scalar(count) == 1000


def kind(statement: str) -> str:
    """A statement's first words, its table when it names one."""
    words = re.sub(r"\s+", " ", statement).strip()
    for pattern in (r"^(SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT)",
                    r"^(INSERT INTO \w+)", r"^(UPDATE \w+)", r"^SELECT .*? (FROM unnest)",
                    r"^SELECT .*? FROM (\w+)"):  # fmt: skip
        if m := re.search(pattern, words):
            return m[1]
    return words[:20]


async def test_a_batch_costs_five_statements_whatever_its_lines(session, connection):
    """SAVEPOINT, the locking lookup, the INSERT of the requests created, the UPDATE of the
    fields merges filled in, RELEASE: for 2 lines as for 200."""
    t = await new_territory(session)
    for i in range(5):
        await seed(session, t, i, "identity")
    costs = []
    for size in (2, 200):
        lines = [csv_line(i % 5, i % 5, 0, "15014", True, False) for i in range(size // 2)]
        lines += [f"NEW{size}X{n};Léa;01/01/1990;0622{n:06d};;;;" for n in range(size // 2)]
        with statements(connection) as seen:
            out = await import_list(
                session, ADMIN_CALLER, csv_file(lines), territory_id=t, mapping=None,
                dry_run=False, batch_lines=size,
            )  # fmt: skip
        assert out.created == size // 2 and out.rejected == 0
        costs.append([kind(s) for s in seen])
    batch = ["SAVEPOINT", "FROM unnest", "INSERT INTO mt_request", "UPDATE mt_request",
             "RELEASE SAVEPOINT"]  # fmt: skip
    assert costs[0] == costs[1] == [
        "territory", "practice", *batch, "INSERT INTO activity_event",
        "INSERT INTO activity_event",
    ]  # fmt: skip


async def test_an_ambiguous_line_inside_a_batch_is_rejected_with_the_same_message(session):
    """Person 0's INS is held by one request, their name, birth date and phone by another."""
    t = await new_territory(session)
    await seed(session, t, 0, "identity")
    await seed(session, t, 0, "ins_other")
    data = csv_file(
        [csv_line(1, None, 0, "", False, False), csv_line(0, 0, 1, "", True, False),
         csv_line(2, None, 0, "", False, False)]
    )  # fmt: skip
    out = await import_list(
        session, ADMIN_CALLER, data, territory_id=t, mapping=None, dry_run=False, batch_lines=3
    )
    assert [line.outcome for line in out.preview] == ["created", "rejected", "created"]
    assert [(e.line, e.field, e.message) for e in out.errors] == [
        (3, "_line", cpam_lines.AMBIGUOUS)
    ]
    rows = (await session.scalars(select(MtRequest).where(MtRequest.territory_id == t))).all()
    assert not any(r.ald for r in rows)  # the ambiguous line merged into neither


@pytest.mark.parametrize("conflict", ["identity", "ins"])
async def test_a_concurrent_registration_makes_the_batch_fall_back(engine, monkeypatch, conflict):
    """Another connection commits a request between the batch's lookup and its writes: for the
    patient of line 3 (the insert skips it), or holding the INS line 2 fills in (a unique
    violation). The batch is replayed line by line: line 3 merges into that request; line 2
    now matches two requests and is rejected."""
    factory = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    async with factory() as s:
        t = await new_territory(s)
        await seed(s, t, 0, "identity")
        await s.commit()
    lookup = cpam_queue._lookup
    other: dict[str, uuid.UUID] = {}

    async def lookup_then_register(session, territory_id, patients):
        found = await lookup(session, territory_id, patients)
        if not other:
            async with factory() as s:
                i = 1 if conflict == "identity" else 3
                values = {**person(i), "patient_ins": ins_of(0 if conflict == "ins" else i)}
                r = MtRequest(territory_id=territory_id, status="waiting", source="hotline",
                              ald=False, precarity=False, criteria_to_check=False,
                              registered_at=now_utc(), preferred_communes=[], **values)  # fmt: skip
                s.add(r)
                await s.commit()
                other["id"] = r.id
        return found

    monkeypatch.setattr(cpam_queue, "_lookup", lookup_then_register)
    data = csv_file(
        [csv_line(0, 0, 0, "", False, False), csv_line(1, 1, 0, "", True, False),
         csv_line(2, None, 0, "", False, False)]
    )  # fmt: skip
    async with factory() as s:  # the import is rolled back: only the territory stays
        with statements(await s.connection()) as seen:
            out = await import_list(
                s, ADMIN_CALLER, data, territory_id=t, mapping=None, dry_run=False,
                batch_lines=3,
            )  # fmt: skip
        rows = (await s.scalars(select(MtRequest).where(MtRequest.territory_id == t))).all()
        events = (
            await s.scalars(select(ActivityEvent.type).where(ActivityEvent.territory_id == t))
        ).all()
        await s.rollback()
    assert "ROLLBACK TO SAVEPOINT" in [kind(x) for x in seen]
    outcomes = [(line.outcome, line.request_id) for line in out.preview]
    if conflict == "identity":
        assert outcomes[1] == ("merged", other["id"])
        assert (out.created, out.merged, out.rejected) == (1, 2, 0)
    else:
        assert outcomes[0][0] == "rejected"
        assert out.errors[0].message == cpam_lines.AMBIGUOUS
        assert (out.created, out.merged, out.rejected) == (2, 0, 1)
    assert len(rows) == (3 if conflict == "identity" else 4)
    assert sorted(events) == sorted(
        ["mt.list_imported"] + ["mt.registered"] * out.created + ["mt.list_merged"] * out.merged
    )
