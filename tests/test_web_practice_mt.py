"""The practice's médecin traitant page over HTTP: the proposals to its own GPs only, accept
and decline as the API lets a practice, French messages, the access log."""

from __future__ import annotations

import re
from html import unescape

from sqlalchemy import func, select

from app.activity.audit import PatientAccess
from tests.test_web_coordination import register_via_api
from tests.test_web_dashboard import sign_in
from tests.test_web_pages import csrf_of


async def propose(client, territory, request_id: str, capacity: int = 2) -> None:
    r = await client.put(
        f"/v1/practitioners/{territory.practitioner_id}/mt-capacity",
        json={"mt_capacity": capacity},
        headers=territory.coordinator,
    )
    assert r.status_code == 200
    r = await client.post(
        f"/v1/mt-requests/{request_id}/proposals",
        json={"practitioner_id": territory.practitioner_id},
        headers=territory.coordinator,
    )
    assert r.status_code == 200, r.text


async def test_practice_accepts_and_declines_proposals(client, territory, session):
    first = await register_via_api(client, territory)
    second = await register_via_api(client, territory, family="Bernard", ald=False, key="mt2")
    await register_via_api(client, territory, family="Durand", key="mt3")  # not proposed
    await sign_in(client, territory.practice)
    page = await client.get("/cabinet/medecin-traitant")
    assert page.status_code == 200
    assert "Aucune proposition en attente de réponse." in page.text
    await propose(client, territory, first)
    await propose(client, territory, second)
    page = await client.get("/cabinet/medecin-traitant")
    csrf = csrf_of(page.text)
    text = unescape(page.text)
    assert "LEMOINE Jeanne — proposé(e) au Dr Claire Martin" in text
    assert "BERNARD Jeanne" in text and "DURAND" not in text
    r = await client.post(
        f"/cabinet/medecin-traitant/{second}/refuser", data={"csrf": csrf_of(page.text)}
    )
    assert r.status_code == 422 and f'id="reason-{second}-error"' in r.text
    assert "Indiquez le motif du refus." in r.text
    r = await client.post(
        f"/cabinet/medecin-traitant/{second}/refuser",
        data={"csrf": csrf_of(page.text), "reason": "Patientèle complète ce mois-ci"},
    )
    assert r.status_code == 303
    page = await client.get("/cabinet/medecin-traitant")
    text = unescape(page.text)
    assert "Proposition refusée : la CPTS proposera un autre médecin." in text
    assert "BERNARD" not in text
    r = await client.post(
        f"/cabinet/medecin-traitant/{first}/accepter", data={"csrf": csrf_of(page.text)}
    )
    assert r.status_code == 303
    page = unescape((await client.get("/cabinet/medecin-traitant")).text)
    assert "Patient rattaché au Dr Martin." in page
    assert "Aucune proposition en attente de réponse." in page
    assert re.search(r"LEMOINE Jeanne</th><td[^>]*>Dr Claire Martin</td>", page)
    r = await client.get(f"/v1/mt-requests/{second}", headers=territory.coordinator)
    assert r.json()["status"] == "waiting"
    # Accepting again: the request is no longer proposed, a French message and a 409.
    again = await client.post(f"/cabinet/medecin-traitant/{first}/accepter", data={"csrf": csrf})
    assert again.status_code == 409 and "Action impossible" in unescape(again.text)
    reads = await session.scalar(
        select(func.count())
        .select_from(PatientAccess)
        .where(
            PatientAccess.record_type == "mt_request",
            PatientAccess.territory_id == territory.id,
            PatientAccess.action == "list",
        )
    )
    assert reads >= 3


async def test_full_gp_and_other_practices(client, territory, other_territory):
    request_id = await register_via_api(client, territory)
    await propose(client, territory, request_id, capacity=1)
    other = await register_via_api(client, territory, family="Bernard", key="mt2")
    await propose(client, territory, other, capacity=2)
    r = await client.post(f"/v1/mt-requests/{other}/accept", headers=territory.coordinator)
    assert r.status_code == 200
    r = await client.put(
        f"/v1/practitioners/{territory.practitioner_id}/mt-capacity",
        json={"mt_capacity": 1},
        headers=territory.coordinator,
    )
    await sign_in(client, territory.practice)
    page = await client.get("/cabinet/medecin-traitant")
    r = await client.post(
        f"/cabinet/medecin-traitant/{request_id}/accepter", data={"csrf": csrf_of(page.text)}
    )
    assert r.status_code == 409
    assert "Ce médecin n'a plus de place de médecin traitant." in unescape(r.text)
    client.cookies.clear()
    await sign_in(client, other_territory.practice)
    page = await client.get("/cabinet/medecin-traitant")
    assert "LEMOINE" not in page.text
    r = await client.post(
        f"/cabinet/medecin-traitant/{request_id}/accepter", data={"csrf": csrf_of(page.text)}
    )
    assert r.status_code == 404
    client.cookies.clear()
    await sign_in(client, territory.coordinator)
    assert (await client.get("/cabinet/medecin-traitant")).status_code == 403
