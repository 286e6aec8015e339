"""The Assurance Maladie's list of patients without a médecin traitant, imported into the
queue (POST /v1/mt-requests/imports): encodings, separators, bad lines, duplicates."""

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from app.activity.models import ActivityEvent
from app.medecin_traitant import cpam_file
from app.medecin_traitant.models import MtRequest
from tests.conftest import assert_problem, practice_body

URL = "/v1/mt-requests/imports"

# A CPAM export as it often comes: Windows-1252, `;`, dd/mm/yyyy, the NIR with spaces.
CP1252_LIST = (
    "NOM;PRENOM;DATE_NAISSANCE;NIR;TELEPHONE;CODE_POSTAL;ALD\r\n"
    "DUPONT;Hélène;04/03/1950;2 50 03 15 014 001 67;06 11 22 33 44;15000;1\r\n"
    "LEFÈVRE;Jérôme;31/02/1980;;06 11 22 33 45;;0\r\n"  # no 31 February
    "MARTIN;Zoé;12/07/1991;;0611;;\r\n"  # a phone too short
    "BERNARD;Noël;01/01/1961;;06 11 22 33 46;99999;oui\r\n"  # a postal code of no commune
    "Dupont;HÉLÈNE;1950-03-04;;+33611223344;;\r\n"  # line 2 again (name, birth date, phone)
    ";Paul;01/01/1970;;06 11 22 33 47;;peut-être\r\n"  # no name, an unreadable ALD flag
).encode("cp1252")


def csv_headers(key, **over):
    return {**key, "Content-Type": "text/csv", **over}


def import_key():
    return {"Idempotency-Key": str(uuid.uuid4())}


async def add_postal_practice(client, t, admin):
    r = await client.post(
        "/v1/practices",
        json=practice_body(t.id, name="Cabinet du Centre", postal_code="15000"),
        headers=admin,
    )
    assert r.status_code == 201, r.text


async def count_requests(session, territory_id) -> int:
    return await session.scalar(
        select(func.count()).where(MtRequest.territory_id == uuid.UUID(territory_id))
    )


async def test_cp1252_list_imports_good_lines_merges_duplicates_and_reports_bad_ones(
    client, territory, admin, session
):
    await add_postal_practice(client, territory, admin)
    r = await client.post(
        URL, content=CP1252_LIST, headers=csv_headers(territory.coordinator, **import_key())
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dry_run"] is False
    assert (body["encoding"], body["delimiter"]) == ("cp1252", ";")
    assert (body["lines"], body["created"], body["merged"], body["rejected"]) == (6, 2, 1, 3)
    assert body["merged_lines"] == [6]
    errors = {(e["line"], e["field"]): e["message"] for e in body["errors"]}
    assert errors == {
        (3, "birth_date"): "Cette date de naissance n'existe pas.",
        (4, "phone"): "Numéro de téléphone français invalide.",
        (7, "family_name"): "Nom manquant.",
        (7, "ald"): "ALD : oui/non, 1/0 ou vide.",
    }
    first = body["preview"][0]
    assert first["outcome"] == "created"
    assert first["patient"]["given_name"] == "Hélène"
    assert first["patient"]["ins"] == "250031501400167"
    assert first["patient"]["commune_insee"] == "15014"  # from the practice's postal code
    assert first["ald"] is True
    assert body["preview"][4]["request_id"] == first["request_id"]
    assert body["preview"][3]["notes"] == [
        "Le code postal 99999 ne désigne pas une seule commune du territoire : commune non "
        "renseignée."
    ]
    rows = (
        await session.scalars(
            select(MtRequest).where(MtRequest.territory_id == uuid.UUID(territory.id))
        )
    ).all()
    assert sorted(r.patient_family_name for r in rows) == ["BERNARD", "DUPONT"]
    assert {r.source for r in rows} == {"assurance_maladie"}
    dupont = next(r for r in rows if r.patient_family_name == "DUPONT")
    assert dupont.ald and not dupont.criteria_to_check  # the fund's own ALD counts at once


async def test_utf8_bom_comma_list_with_a_given_mapping_through_multipart(
    client, territory, session
):
    data = (
        "\ufeffNom de naissance,Prénom usuel,Né le,Portable,Commune\n"
        "Petit,Léa,1988-11-30,0622334455,15187\n"
        "Roux,Émile,30/11/1944,0622334456,\n"
    ).encode()
    mapping = {
        "family_name": "Nom de naissance",
        "given_name": "Prénom usuel",
        "birth_date": "Né le",
        "phone": "Portable",
        "commune_insee": "Commune",
    }
    r = await client.post(
        URL,
        files={"file": ("liste.csv", data, "text/csv")},
        data={"mapping": json.dumps(mapping)},
        headers={**territory.coordinator, **import_key()},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["encoding"], body["delimiter"]) == ("utf-8-sig", ",")
    assert body["columns"][0] == "Nom de naissance"  # the BOM is not part of the header
    assert (body["created"], body["merged"], body["rejected"]) == (2, 0, 0)
    roux = await session.scalar(select(MtRequest).where(MtRequest.patient_family_name == "Roux"))
    assert roux.patient_birth_date == date(1944, 11, 30)
    assert roux.patient_phone == "+33622334456"


async def test_dry_run_previews_without_writing_and_needs_no_idempotency_key(
    client, territory, admin, session
):
    await add_postal_practice(client, territory, admin)
    before = await count_requests(session, territory.id)
    r = await client.post(
        URL, params={"dry_run": "true"}, content=CP1252_LIST,
        headers=csv_headers(territory.coordinator),
    )  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dry_run"] is True
    assert (body["created"], body["merged"], body["rejected"]) == (2, 1, 3)
    assert [line["outcome"] for line in body["preview"]] == [
        "created", "rejected", "rejected", "created", "merged", "rejected",
    ]  # fmt: skip
    assert all(line["request_id"] is None for line in body["preview"])
    assert await count_requests(session, territory.id) == before
    imported = await session.scalar(
        select(func.count()).where(ActivityEvent.type == "mt.list_imported")
    )
    assert imported == 0


async def test_a_line_of_a_patient_already_in_the_queue_merges_keeping_their_place(
    client, territory, session
):
    r = await client.post(
        "/v1/mt-requests",
        json={
            "patient": {"family_name": "DUPONT", "given_name": "Hélène",
                        "birth_date": "1950-03-04", "phone": "06 11 22 33 44"},
            "ald": False, "precarity": False, "source": "hotline",
        },
        headers={**territory.coordinator, **import_key()},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    existing = r.json()
    r = await client.post(
        URL, content=CP1252_LIST, headers=csv_headers(territory.coordinator, **import_key())
    )
    body = r.json()
    assert (body["created"], body["merged"]) == (1, 2)
    assert body["preview"][0]["request_id"] == existing["id"]
    row = await session.get(MtRequest, uuid.UUID(existing["id"]))
    await session.refresh(row)
    assert row.source == "hotline"
    assert row.registered_at == datetime.fromisoformat(existing["registered_at"])
    assert row.patient_ins == "250031501400167"  # filled in from the list
    assert row.ald is True  # the fund reports it
    assert await count_requests(session, territory.id) == 2


async def test_import_needs_an_idempotency_key_and_replays_the_first_answer(
    client, territory, session
):
    r = await client.post(URL, content=CP1252_LIST, headers=csv_headers(territory.coordinator))
    assert_problem(r, 422)
    key = import_key()
    first = await client.post(URL, content=CP1252_LIST, headers=csv_headers(territory.coordinator,
                                                                             **key))  # fmt: skip
    again = await client.post(URL, content=CP1252_LIST, headers=csv_headers(territory.coordinator,
                                                                             **key))  # fmt: skip
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert await count_requests(session, territory.id) == 2


async def test_activity_log_counts_the_import_without_patient_data(client, territory, session):
    r = await client.post(
        URL, content=CP1252_LIST, headers=csv_headers(territory.coordinator, **import_key())
    )
    assert r.status_code == 200, r.text
    events = (
        await session.scalars(
            select(ActivityEvent).where(
                ActivityEvent.territory_id == uuid.UUID(territory.id),
                ActivityEvent.type.in_(("mt.list_imported", "mt.list_merged", "mt.registered")),
            )
        )
    ).all()
    summary = next(e for e in events if e.type == "mt.list_imported")
    assert {k: summary.data[k] for k in ("lines", "created", "merged", "rejected")} == {
        "lines": 6, "created": 2, "merged": 1, "rejected": 3,
    }  # fmt: skip
    assert [e.data["filled"] for e in events if e.type == "mt.list_merged"] == [[]]
    logged = json.dumps([e.data for e in events]).lower()
    for secret in ("dupont", "hélène", "bernard", "0611223344", "+33611223344", "1950"):
        assert secret not in logged


@pytest.mark.parametrize(
    ("mapping", "loc"),
    [
        ({"family_name": "NOM", "given_name": "PRENOM", "birth_date": "DATE_NAISSANCE"},
         ["mapping", "phone"]),
        ({"family_name": "NOM", "given_name": "PRENOM", "birth_date": "DATE_NAISSANCE",
          "phone": "PORTABLE"}, ["mapping", "phone"]),
        ({"family_name": "NOM", "given_name": "NOM", "birth_date": "DATE_NAISSANCE",
          "phone": "TELEPHONE"}, ["mapping", "given_name"]),
        ({"surname": "NOM"}, ["mapping", "surname"]),
    ],
)  # fmt: skip
async def test_an_unusable_mapping_is_a_422_naming_the_field(client, territory, mapping, loc):
    r = await client.post(
        URL, params={"dry_run": "true", "mapping": json.dumps(mapping)}, content=CP1252_LIST,
        headers=csv_headers(territory.coordinator),
    )  # fmt: skip
    assert assert_problem(r, 422)["errors"][0]["loc"] == loc


async def test_a_file_beyond_the_line_bound_is_refused_whole(
    client, territory, session, monkeypatch
):
    monkeypatch.setattr(cpam_file, "MT_IMPORT_MAX_LINES", 3)
    r = await client.post(
        URL, content=CP1252_LIST, headers=csv_headers(territory.coordinator, **import_key())
    )
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "file"]
    assert await count_requests(session, territory.id) == 0


async def test_a_file_without_header_or_with_nul_bytes_is_refused(client, territory):
    for data in (b"", b"\x00\x01binary;file\n1;2\n", b"just one column\nvalue\n"):
        r = await client.post(
            URL, params={"dry_run": "true"}, content=data,
            headers=csv_headers(territory.coordinator),
        )  # fmt: skip
        assert assert_problem(r, 422)["errors"][0]["loc"][0] in ("body", "mapping")


async def test_only_coordinators_import_and_only_into_their_territory(
    client, territory, other_territory
):
    r = await client.post(
        URL, params={"dry_run": "true"}, content=CP1252_LIST,
        headers=csv_headers(territory.regulator),
    )  # fmt: skip
    assert_problem(r, 403)
    r = await client.post(
        URL, params={"dry_run": "true", "territory_id": other_territory.id},
        content=CP1252_LIST, headers=csv_headers(territory.coordinator),
    )  # fmt: skip
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["query", "territory_id"]


async def test_another_media_type_is_a_415(client, territory):
    r = await client.post(URL, json={"file": "NOM;PRENOM"}, headers=territory.coordinator)
    assert_problem(r, 415)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("04/03/1950", date(1950, 3, 4)), ("4-3-1950", date(1950, 3, 4)),
     ("1950-03-04", date(1950, 3, 4)), ("04.03.1950", date(1950, 3, 4)),
     ("04/03/50", "Date de naissance illisible : jj/mm/aaaa ou aaaa-mm-jj."),
     ("29/02/1951", "Cette date de naissance n'existe pas.")],
)  # fmt: skip
def test_birth_dates_read_in_french_or_iso_form(text, expected):
    assert cpam_file._birth_date(text) == expected


def test_latin1_bytes_that_are_not_cp1252_still_decode():
    text, encoding = cpam_file.decode("NOM;PRENOM\nX;\x81\n".encode("latin-1"))
    assert encoding == "latin-1" and "\x81" in text


def test_usual_cpam_headers_are_recognised_whatever_their_case_and_accents():
    mapping = cpam_file.guess_mapping(
        ["Nom", "Prénom", "Date de naissance", "N° Téléphone", "NIR", "Code postal", "Top ALD",
         "C2S"]
    )  # fmt: skip
    assert mapping == {
        "family_name": "Nom", "given_name": "Prénom", "birth_date": "Date de naissance",
        "phone": "N° Téléphone", "ins": "NIR", "postal_code": "Code postal", "ald": "Top ALD",
        "precarity": "C2S",
    }  # fmt: skip


async def test_the_command_imports_a_list_with_progress(engine, database_url, tmp_path):
    """`creneau mt import-cpam`, run as an operator would, on a territory committed for it."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from app.directory import schemas as dir_schemas
    from app.directory import territory_service as dir_service
    from tests.conftest import ADMIN_CALLER, territory_body

    async with async_sessionmaker(engine)() as s:
        t = await dir_service.create_territory(
            s, ADMIN_CALLER, dir_schemas.TerritoryIn(**territory_body(name="CPTS Ligne"))
        )
        territory_id = t.id
        await s.commit()
    path = tmp_path / "liste-cpam.csv"
    path.write_bytes(CP1252_LIST)
    env = {**os.environ, "DATABASE_URL": database_url}
    command = [sys.executable, "-m", "app.cli", "mt", "import-cpam", str(path),
               "--territory", str(territory_id)]  # fmt: skip
    dry = await asyncio.to_thread(
        subprocess.run, [*command, "--dry-run"], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "2 created, 1 merged, 3 rejected (dry run: nothing written)" in dry.stdout
    done = await asyncio.to_thread(
        subprocess.run,
        [*command, "--mapping", "family_name=NOM,given_name=PRENOM,birth_date=DATE_NAISSANCE,"
         "phone=TELEPHONE"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "6 lines (cp1252, ';'): 2 created, 1 merged, 3 rejected" in done.stdout
    assert "Importing" in done.stderr  # the progress bar
    assert "line 3, birth_date: Cette date de naissance n'existe pas." in done.stderr
    async with engine.connect() as conn:
        sources = (
            await conn.execute(
                select(MtRequest.source, MtRequest.patient_ins).where(
                    MtRequest.territory_id == territory_id
                )
            )
        ).all()
    # The mapping left the NIR out: nothing of it is stored.
    assert sorted(sources) == [("assurance_maladie", None), ("assurance_maladie", None)]
    bad = await asyncio.to_thread(
        subprocess.run, [*command, "--mapping", "phone=PORTABLE"], env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "mapping.phone" in bad.stderr


async def test_a_line_matching_two_requests_is_rejected_for_a_person_to_check(client, territory):
    """One open request holds the line's INS, another its name, birth date and phone."""
    for family_name, ins in (("AUTRE", "250031501400167"), ("DUPONT", None)):
        patient = {"family_name": family_name, "given_name": "Hélène",
                   "birth_date": "1950-03-04", "phone": "06 11 22 33 44"}  # fmt: skip
        if ins:
            patient |= {"ins": ins, "phone": "06 99 99 99 99"}
        r = await client.post(
            "/v1/mt-requests",
            json={"patient": patient, "ald": False, "precarity": False, "source": "hotline"},
            headers={**territory.coordinator, **import_key()},
        )
        assert r.status_code == 201, r.text
    data = (
        "NOM;PRENOM;DATE_NAISSANCE;NIR;TELEPHONE\n"
        "DUPONT;Hélène;04/03/1950;250031501400167;06 11 22 33 44\n"
    ).encode()
    r = await client.post(
        URL, content=data, headers=csv_headers(territory.coordinator, **import_key())
    )
    body = r.json()
    assert (body["created"], body["merged"], body["rejected"]) == (0, 0, 1)
    assert body["errors"][0]["line"] == 2 and body["errors"][0]["field"] == "_line"
    assert "à vérifier à la main" in body["errors"][0]["message"]
