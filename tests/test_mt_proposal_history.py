"""Each MT request's story: every GP proposed, when, and the answer; a decline records who
said no (patient or GP) and why; shown on the coordinator's request page, erased reasons with
the patient's data."""

from __future__ import annotations

import uuid
from datetime import timedelta
from html import unescape

from sqlalchemy import select

from app.medecin_traitant.models import MtProposal
from app.medecin_traitant.transitions import expire_proposals
from app.retention import purge_expired
from tests.test_mt_requests import gp_with_capacity, register
from tests.test_web_dashboard import sign_in
from tests.test_web_pages import csrf_of


async def propose(client, t, rid, gp):
    r = await client.post(
        f"/v1/mt-requests/{rid}/proposals", json={"practitioner_id": gp}, headers=t.coordinator
    )
    assert r.status_code == 200, r.text


async def history(session, rid) -> list[tuple[str, str | None, str | None]]:
    rows = await session.scalars(
        select(MtProposal)
        .where(MtProposal.request_id == uuid.UUID(rid))
        .order_by(MtProposal.proposed_at)
    )
    return [(p.outcome, p.declined_by, p.reason) for p in rows.all()]


async def test_every_proposal_and_its_answer_is_kept(client, territory, session, clock):
    gp = await gp_with_capacity(client, territory)
    rid = (await register(client, territory)).json()["id"]
    path = f"/v1/mt-requests/{rid}"
    await propose(client, territory, rid, gp)
    r = await client.post(
        f"{path}/decline",
        json={"reason": "trop loin", "declined_by": "patient"},
        headers=territory.coordinator,
    )
    assert r.status_code == 200, r.text
    clock.advance(minutes=1)
    await propose(client, territory, rid, gp)
    # A practice declines as the GP, whatever it says.
    r = await client.post(
        f"{path}/decline",
        json={"reason": "patientèle complète", "declined_by": "patient"},
        headers=territory.practice,
    )
    assert r.status_code == 200, r.text
    clock.advance(minutes=1)
    await propose(client, territory, rid, gp)
    clock.advance(days=8)
    assert (await expire_proposals(session))["proposals_expired"] >= 1  # others: committed data
    clock.advance(minutes=1)
    await propose(client, territory, rid, gp)
    assert (await client.post(f"{path}/accept", headers=territory.coordinator)).status_code == 200
    assert await history(session, rid) == [
        ("declined", "patient", "trop loin"),
        ("declined", "practitioner", "patientèle complète"),
        ("lapsed", None, None),
        ("accepted", None, None),
    ]
    await sign_in(client, territory.coordinator, "/coordination")
    page = unescape((await client.get(f"/coordination/mt/{rid}")).text)
    assert "Historique des propositions" in page
    assert page.index("trop loin") < page.index("patientèle complète")
    assert "Le patient" in page and "Le médecin" in page and "Expirée sans réponse" in page


async def test_a_withdrawal_closes_the_pending_proposal(client, territory, session):
    gp = await gp_with_capacity(client, territory)
    rid = (await register(client, territory)).json()["id"]
    await propose(client, territory, rid, gp)
    r = await client.post(
        f"/v1/mt-requests/{rid}/withdraw",
        json={"reason": "déménage"},
        headers=territory.coordinator,
    )
    assert r.status_code == 200
    assert await history(session, rid) == [("withdrawn", None, None)]


async def test_the_coordinator_says_who_declined_on_the_request_page(client, territory, session):
    gp = await gp_with_capacity(client, territory)
    rid = (await register(client, territory)).json()["id"]
    await propose(client, territory, rid, gp)
    await sign_in(client, territory.coordinator, "/coordination")
    page = await client.get(f"/coordination/mt/{rid}")
    r = await client.post(
        f"/coordination/mt/{rid}/refuser",
        data={"csrf": csrf_of(page.text), "reason": "horaires", "declined_by": "practitioner"},
    )
    assert r.status_code == 303
    assert await history(session, rid) == [("declined", "practitioner", "horaires")]
    r = await client.post(
        f"/v1/mt-requests/{rid}/decline",
        json={"reason": "x", "declined_by": "voisin"},
        headers=territory.coordinator,
    )
    assert r.status_code == 422


async def test_decline_reasons_are_erased_with_the_patient_data(client, territory, session):
    gp = await gp_with_capacity(client, territory)
    rid = (await register(client, territory)).json()["id"]
    await propose(client, territory, rid, gp)
    path = f"/v1/mt-requests/{rid}"
    await client.post(
        f"{path}/decline", json={"reason": "trop loin"}, headers=territory.coordinator
    )
    r = await client.post(f"{path}/withdraw", json={"reason": "fin"}, headers=territory.coordinator)
    assert r.status_code == 200
    from datetime import UTC, datetime

    await purge_expired(session, now=datetime.now(UTC) + timedelta(days=800))
    assert await history(session, rid) == [("declined", None, None)]


async def test_a_gp_the_patient_declined_is_not_offered_first_again(client, territory):
    for _ in range(2):
        await gp_with_capacity(client, territory)
    rid = (await register(client, territory)).json()["id"]
    path = f"/v1/mt-requests/{rid}"

    async def candidates() -> list[str]:
        r = await client.get(f"{path}/candidates", headers=territory.coordinator)
        assert r.status_code == 200, r.text
        return [c["practitioner"]["id"] for c in r.json()]

    before = await candidates()
    first = before[0]
    # Declined by the GP: still offered in its place.
    await propose(client, territory, rid, first)
    r = await client.post(f"{path}/decline", json={"reason": "x"}, headers=territory.practice)
    assert r.status_code == 200
    assert await candidates() == before
    # Declined by the patient: last from now on.
    await propose(client, territory, rid, first)
    r = await client.post(
        f"{path}/decline",
        json={"reason": "préfère une femme", "declined_by": "patient"},
        headers=territory.coordinator,
    )
    assert r.status_code == 200
    after = await candidates()
    assert after[-1] == first and after[:-1] == before[1:]
