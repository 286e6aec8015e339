"""The coordinator's pages over HTTP: the MT queue, a request's candidates and transitions,
capacities, the directory and the keys, through the API's own services."""

from __future__ import annotations

import re
from html import unescape

from sqlalchemy import func, select

from app.activity.audit import PatientAccess
from app.directory.models import ApiKey, Practitioner
from tests.test_web_dashboard import sign_in
from tests.test_web_pages import PATIENT, csrf_of, field_value


async def register_via_api(client, territory, family="Lemoine", ald=True, key="mt1") -> str:
    r = await client.post(
        "/v1/mt-requests",
        json={"patient": {"family_name": family, "given_name": "Jeanne",
                          "birth_date": "1948-05-02", "phone": "0612345678",
                          "commune_insee": "15014"},
              "ald": ald, "precarity": False, "source": "cpts"},
        headers={**territory.coordinator, "Idempotency-Key": key},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def test_coordinator_attaches_a_patient(client, territory, session):
    request_id = await register_via_api(client, territory)
    await register_via_api(client, territory, family="Bernard", ald=False, key="mt2")
    await sign_in(client, territory.coordinator)
    assert (await client.get("/accueil")).headers["location"] == "/coordination"
    queue = await client.get("/coordination")
    assert queue.status_code == 200
    text = unescape(queue.text)
    assert text.index("LEMOINE Jeanne") < text.index("BERNARD Jeanne")  # ALD and 70+ first
    # No capacity yet: no candidate. Give the GP three places.
    page = await client.get(f"/coordination/mt/{request_id}")
    assert "Aucun médecin n'a de place" in unescape(page.text)
    caps = await client.get("/coordination/capacites")
    r = await client.post(
        f"/coordination/capacites/{territory.practitioner_id}",
        data={"csrf": csrf_of(caps.text), "mt_capacity": "3"},
    )
    assert r.status_code == 303
    assert "Capacité du Dr Martin : 3 patients." in unescape(
        (await client.get("/coordination/capacites")).text
    )
    page = await client.get(f"/coordination/mt/{request_id}")
    assert "Proposer le Dr Martin" in page.text and "3 / 3" in page.text
    r = await client.post(
        f"/coordination/mt/{request_id}/proposer",
        data={"csrf": csrf_of(page.text), "practitioner_id": territory.practitioner_id},
    )
    assert r.status_code == 303
    page = await client.get(f"/coordination/mt/{request_id}")
    assert "Médecin proposé au patient." in unescape(page.text)
    # The queue's default shows the requests still to handle, the one just proposed included.
    assert "LEMOINE Jeanne" in unescape((await client.get("/coordination")).text)
    assert "LEMOINE Jeanne" not in unescape((await client.get("/coordination?statut=waiting")).text)
    r = await client.post(
        f"/coordination/mt/{request_id}/refuser", data={"csrf": csrf_of(page.text), "reason": ""}
    )
    assert r.status_code == 422 and 'id="decline-reason-error"' in r.text
    r = await client.post(
        f"/coordination/mt/{request_id}/accepter", data={"csrf": csrf_of(page.text)}
    )
    assert r.status_code == 303
    page = await client.get(f"/coordination/mt/{request_id}")
    assert "Rattaché" in unescape(page.text) and "Médecin traitant" in unescape(page.text)
    caps = unescape((await client.get("/coordination/capacites")).text)
    assert re.search(r"Dr Claire Martin</th><td[^>]*>1</td><td[^>]*>2</td>", caps)
    reads = await session.scalar(
        select(func.count())
        .select_from(PatientAccess)
        .where(
            PatientAccess.record_type == "mt_request", PatientAccess.territory_id == territory.id
        )
    )
    assert reads >= 4  # the queue and each page showing the patient


async def test_register_withdraw_and_duplicate(client, territory):
    await sign_in(client, territory.coordinator)
    form = await client.get("/coordination/mt/nouvelle")
    data = {"csrf": csrf_of(form.text), "jeton": field_value(form.text, "jeton"),
            "source": "hotline", "precarity": "true", **PATIENT}  # fmt: skip
    r = await client.post("/coordination/mt/nouvelle", data={**data, "patient.birth_date": ""})
    assert r.status_code == 422 and 'id="patient-birth_date-error"' in r.text
    r = await client.post("/coordination/mt/nouvelle", data=data)
    assert r.status_code == 303
    location = r.headers["location"]
    page = await client.get(location)
    assert "Patient inscrit dans la file." in page.text and "Précarité" in page.text
    again = await client.post("/coordination/mt/nouvelle", data=data)  # double submission
    assert again.headers["location"] == location
    form = await client.get("/coordination/mt/nouvelle")
    duplicate = {**data, "jeton": field_value(form.text, "jeton")}
    r = await client.post("/coordination/mt/nouvelle", data=duplicate)
    assert r.headers["location"] == location  # the existing request
    r = await client.post(
        f"{location}/retirer", data={"csrf": csrf_of(page.text), "reason": "A trouvé un médecin"}
    )
    assert r.status_code == 303
    assert "Sorti de la file" in unescape((await client.get(location)).text)


async def test_directory_and_keys(client, territory, session):
    await sign_in(client, territory.coordinator)
    page = await client.get("/coordination/annuaire")
    assert "Maison de santé d&#39;Aurillac" in page.text and "Dr Claire Martin" in page.text
    data = {"csrf": csrf_of(page.text), "practitioner.practice_id": territory.practice_id,
            "practitioner.rpps": "12345678901", "practitioner.family_name": "Roux",
            "practitioner.given_name": "Paul", "practitioner.mt_capacity": "10"}  # fmt: skip
    r = await client.post(
        "/coordination/annuaire/medecins", data={**data, "practitioner.rpps": "12"}
    )
    assert r.status_code == 422 and "Le RPPS compte 11 chiffres." in r.text
    r = await client.post("/coordination/annuaire/medecins", data=data)
    assert r.status_code == 303
    assert await session.scalar(
        select(Practitioner).where(
            Practitioner.rpps == "12345678901", Practitioner.territory_id == territory.id
        )
    )
    keys = await client.get("/coordination/cles")
    assert keys.status_code == 200
    r = await client.post(
        "/coordination/cles",
        data={"csrf": csrf_of(keys.text), "role": "practice", "name": "Secrétariat",
              "practice_id": territory.practice_id},
    )  # fmt: skip
    assert r.status_code == 200
    secret = re.search(r'<code class="secret">(crn_[^<]+)</code>', r.text).group(1)
    key = await session.scalar(
        select(ApiKey).where(
            ApiKey.name == "Secrétariat", ApiKey.practice_id == territory.practice_id
        )
    )
    assert key.role == "practice" and secret.startswith(key.prefix)
    asked = await client.post(
        f"/coordination/cles/{key.id}/revoquer", data={"csrf": csrf_of(keys.text)}
    )
    assert asked.status_code == 200 and "Révoquer la clé « Secrétariat » ?" in asked.text
    await session.refresh(key)
    assert key.revoked_at is None  # nothing happens before the confirmation
    r = await client.post(
        f"/coordination/cles/{key.id}/revoquer",
        data={"csrf": csrf_of(asked.text), "confirme": "oui"},
    )
    assert r.status_code == 303
    await session.refresh(key)
    assert key.revoked_at is not None
    r = await client.post(
        "/coordination/cles",
        data={"csrf": csrf_of(keys.text), "role": "practice", "name": "Sans cabinet"},
    )
    assert r.status_code == 422 and 'id="practice_id-error"' in r.text


async def test_other_roles_cannot_open_the_coordination(client, territory, other_territory):
    await sign_in(client, territory.practice)
    assert (await client.get("/coordination")).status_code == 403
    client.cookies.clear()
    await sign_in(client, other_territory.coordinator)
    request_id = await register_via_api(client, territory)
    assert (await client.get(f"/coordination/mt/{request_id}")).status_code == 404
