"""Refusals split by side (patient, GP) and reason in the MT figures (JSON, both CSVs, the
dashboard), on a hand-counted scenario, and each decline's reason on the request page."""

import csv
import io
import re
from datetime import datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

from app.activity.mt_figures import DECLINE_REASONS
from app.medecin_traitant.models import DECLINE_REASONS as STORED_REASONS
from app.medecin_traitant.transitions import expire_proposals
from tests.test_mt_proposal_history import propose
from tests.test_mt_requests import gp_with_capacity, register
from tests.test_web_dashboard import sign_in

PARIS = ZoneInfo("Europe/Paris")
MID_YEAR = datetime(2027, 6, 9, 10, tzinfo=PARIS)


async def decline(client, key, rid, **body):
    r = await client.post(
        f"/v1/mt-requests/{rid}/decline", json={"reason": "motif libre", **body}, headers=key
    )
    assert r.status_code == 200, r.text


async def scenario(client, t, session, clock) -> tuple[str, str]:
    """Six proposals: four declined, one lapsed, one accepted (counted in the test)."""
    g1, g2, g3 = [await gp_with_capacity(client, t) for _ in range(3)]
    r1, r2, r3, r4 = [(await register(client, t)).json()["id"] for _ in range(4)]
    await propose(client, t, r1, g1)
    await decline(client, t.coordinator, r1, declined_by="patient", reason_code="distance")
    clock.advance(minutes=1)  # the history is in the order of the proposals' instants
    await propose(client, t, r1, g2)
    # The practice answers for its GP: the GP's side, whatever it would say.
    await decline(client, t.practice, r1, declined_by="patient", reason_code="capacity")
    await propose(client, t, r2, g1)
    await decline(client, t.coordinator, r2, declined_by="patient", reason_code="preference")
    await propose(client, t, r3, g2)
    await decline(client, t.coordinator, r3)  # neither who nor why
    await propose(client, t, r4, g3)
    clock.advance(days=8)
    await expire_proposals(session)  # r4's proposal lapses
    await propose(client, t, r1, g3)
    assert (await client.post(f"/v1/mt-requests/{r1}/accept", headers=t.coordinator)).is_success
    return r1, r2


async def test_refusals_are_counted_by_side_and_reason(client, territory, session, clock):
    clock.set(MID_YEAR)  # the scenario's 8 days in one year's period
    today = MID_YEAR.date()
    await scenario(client, territory, session, clock)
    params = {"from": today.isoformat(), "to": (today + timedelta(days=10)).isoformat(),
              "granularity": "year"}  # fmt: skip
    r = await client.get("/v1/indicators", params=params, headers=territory.coordinator)
    assert r.status_code == 200, r.text
    [period] = r.json()["periods"]
    mt = period["mt"]
    # r1: G1, G2, G3; r2: G1; r3: G2; r4: G3 → 6 proposals; r4's lapsed.
    assert (mt["proposals"], mt["proposals_lapsed"], mt["declined"]) == (6, 1, 4)
    # r1 by the patient (distance), r1 by the GP (capacity), r2 by the patient (preference),
    # r3 unspecified.
    assert mt["declined_by"] == {"patient": 2, "practitioner": 1, "unspecified": 1}
    zero = dict.fromkeys(DECLINE_REASONS, 0)
    assert mt["decline_reasons"] == {
        "patient": {**zero, "distance": 1, "preference": 1},
        "practitioner": {**zero, "capacity": 1},
        "unspecified": {**zero, "unspecified": 1},
    }
    raw = await client.get(
        "/v1/indicators", params={**params, "dialect": "raw"},
        headers={**territory.coordinator, "Accept": "text/csv"},
    )  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(raw.text)))
    assert sum(int(row["mt.declined_by.patient"]) for row in rows) == 2
    assert sum(int(row["mt.decline_reasons.practitioner.capacity"]) for row in rows) == 1
    excel = await client.get(
        "/v1/indicators", params=params, headers={**territory.coordinator, "Accept": "text/csv"}
    )
    header = excel.content.decode("utf-8-sig").splitlines()[0].split(";")
    assert "MT propositions refusées par le patient" in header
    assert "MT refus par le médecin : patientèle complète" in header
    assert "MT refus sans préciser qui : motif non précisé" in header


async def test_the_dashboard_shows_refusals_by_side_and_reason(client, territory, session, clock):
    # Mid-year: the scenario's 8 days stay in the ACI year the dashboard shows (from the last
    # 23:50 of a year, they would end in the next one, rightly without these refusals).
    clock.set(MID_YEAR)
    await scenario(client, territory, session, clock)
    await sign_in(client, territory.coordinator, "/dashboard")
    page = unescape((await client.get(f"/dashboard?territory_id={territory.id}")).text)
    assert "Refus de propositions par motif" in page
    table = page[page.index("Refus de propositions par motif") :]
    cells = re.sub(r' data-label="[^"]*"', "", table)
    assert '<th scope="row">Trop loin ou hors secteur</th><td>1</td><td>0</td><td>0</td>' in cells
    assert '<th scope="row">Patientèle complète</th><td>0</td><td>1</td><td>0</td>' in cells


async def test_the_request_page_shows_who_declined_and_why(client, territory, session, clock):
    r1, _ = await scenario(client, territory, session, clock)
    await sign_in(client, territory.coordinator, "/coordination")
    page = unescape((await client.get(f"/coordination/mt/{r1}")).text)
    history = page[page.index("Historique des propositions") :]
    assert "Trop loin ou hors secteur : motif libre" in history
    assert "Patientèle complète : motif libre" in history
    assert history.count("Acceptée") == 1


async def test_the_coordinator_records_the_reason_on_the_page(client, territory):
    gp = await gp_with_capacity(client, territory)
    rid = (await register(client, territory)).json()["id"]
    await propose(client, territory, rid, gp)
    await sign_in(client, territory.coordinator, "/coordination")
    page = await client.get(f"/coordination/mt/{rid}")
    from tests.test_web_pages import csrf_of

    r = await client.post(
        f"/coordination/mt/{rid}/refuser",
        data={"csrf": csrf_of(page.text), "reason": "horaires du soir", "declined_by": "patient",
              "reason_code": "schedule"},
    )  # fmt: skip
    assert r.status_code == 303, r.text
    page = unescape((await client.get(f"/coordination/mt/{rid}")).text)
    assert "Horaires ou délais : horaires du soir" in page


def test_the_figures_count_every_stored_reason():
    assert set(DECLINE_REASONS) == {*STORED_REASONS, "unspecified"}


async def test_the_api_gives_each_proposal_with_who_declined_and_why(
    client, territory, session, clock
):
    r1, _ = await scenario(client, territory, session, clock)
    r = await client.get(f"/v1/mt-requests/{r1}/proposals", headers=territory.coordinator)
    assert r.status_code == 200, r.text
    assert [(p["outcome"], p["declined_by"], p["reason_code"], p["reason"]) for p in r.json()] == [
        ("declined", "patient", "distance", "motif libre"),
        ("declined", "practitioner", "capacity", "motif libre"),
        ("accepted", None, None, None),
    ]
    forbidden = await client.get(f"/v1/mt-requests/{r1}/proposals", headers=territory.practice)
    assert forbidden.status_code == 403
