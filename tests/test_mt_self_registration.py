"""The public médecin traitant page over HTTP: a patient (or someone on their behalf) puts
themselves in the CPTS's queue with their consent, gets a reference, checks where they stand;
duplicates merge with the same answer; honeypot, rate limits and the daily cap; declared
criteria count for priority only once the coordinator confirms them."""

from __future__ import annotations

import re
import uuid
from html import unescape

from sqlalchemy import select

from app.config import get_settings
from app.medecin_traitant.models import MtRequest
from tests.conftest import assert_problem
from tests.test_web_dashboard import sign_in
from tests.test_web_pages import csrf_of


def form(**over: str) -> dict[str, str]:
    return {
        "patient.family_name": "Roux",
        "patient.given_name": "Marcel",
        "patient.birth_date": "1980-04-12",
        "patient.phone": "06 11 22 33 44",
        "contact_email": "",
        "commune": "15014",
        "consentement": "oui",
        "site_web": "",
        **over,
    }


def reference_of(html: str) -> str:
    match = re.search(r'class="reference">([A-Z0-9-]+)<', html)
    assert match, html
    return match.group(1)


async def requests_of(session, territory) -> list[MtRequest]:
    rows = await session.scalars(
        select(MtRequest).where(MtRequest.territory_id == uuid.UUID(territory.id))
    )
    return list(rows.all())


async def test_the_chooser_links_each_territory_to_its_form(client, territory):
    page = await client.get("/medecin-traitant")
    assert page.status_code == 200
    assert f'href="/medecin-traitant/{territory.id}">CPTS Test</a>' in page.text
    assert "script-src 'none'" in page.headers["content-security-policy"]
    assert "<script" not in page.text


async def test_a_patient_registers_themselves_and_gets_a_reference(client, territory, session):
    page = await client.get(f"/medecin-traitant/{territory.id}")
    assert page.status_code == 200
    text = unescape(page.text)
    assert "La CPTS Test est responsable du traitement" in text
    assert "CPTS CPTS" not in text
    assert "730 jours après sa clôture" in text
    r = await client.post(
        f"/medecin-traitant/{territory.id}",
        data=form(ald="true", contact_email="marcel.roux@exemple.fr"),
    )
    assert r.status_code == 200, r.text
    reference = reference_of(r.text)
    [request] = await requests_of(session, territory)
    assert request.source == "self" and request.status == "waiting"
    assert request.reference == reference and request.criteria_to_check
    assert request.patient_phone == "+33611223344" and request.consent_at is not None
    assert request.contact_email == "marcel.roux@exemple.fr"
    assert request.created_by_key_id is None


async def test_registration_without_consent_keeps_nothing_and_names_the_field(
    client, territory, session
):
    r = await client.post(f"/medecin-traitant/{territory.id}", data=form(consentement=""))
    assert r.status_code == 422
    text = unescape(r.text)
    assert "Accord : Votre accord est nécessaire" in text
    assert 'id="consentement-error"' in r.text and "autofocus" in r.text
    assert await requests_of(session, territory) == []


async def test_each_invalid_field_is_named_in_the_summary(client, territory, session):
    r = await client.post(
        f"/medecin-traitant/{territory.id}",
        data=form(**{"patient.phone": "12", "commune": "9", "contact_email": "non"}),
    )
    assert r.status_code == 422
    text = unescape(r.text)
    assert "Téléphone du patient : Numéro de téléphone français invalide." in text
    assert "E-mail : Adresse e-mail invalide" in text
    assert "Commune : Commune introuvable" in text
    assert await requests_of(session, territory) == []


async def test_a_commune_name_is_accepted(client, territory, session):
    r = await client.post(f"/medecin-traitant/{territory.id}", data=form(commune="st flour"))
    assert r.status_code == 200, r.text
    [request] = await requests_of(session, territory)
    assert request.patient_commune_insee == "15187"


async def test_a_postal_code_of_several_communes_asks_which(client, territory, session):
    r = await client.post(f"/medecin-traitant/{territory.id}", data=form(commune="15000"))
    assert r.status_code == 422
    text = unescape(r.text)
    assert "Commune : Plusieurs communes correspondent : choisissez la bonne dans la liste." in text
    assert 'name="commune.choix.0" value="15014"' in text
    assert "Ytrac (15267) — codes postaux 15000, 15130" in text
    assert await requests_of(session, territory) == []
    chosen = form(commune="15000", **{"commune.choix.0": "15267"})
    r = await client.post(f"/medecin-traitant/{territory.id}", data=chosen)
    assert r.status_code == 200, r.text
    [request] = await requests_of(session, territory)
    assert request.patient_commune_insee == "15267"


async def test_the_honeypot_answers_like_a_registration_and_keeps_nothing(
    client, territory, session
):
    r = await client.post(f"/medecin-traitant/{territory.id}", data=form(site_web="http://x"))
    assert r.status_code == 200
    assert reference_of(r.text)
    assert await requests_of(session, territory) == []


async def test_a_duplicate_merges_into_the_open_request_with_the_same_answer(
    client, territory, session
):
    first = await client.post(f"/medecin-traitant/{territory.id}", data=form())
    again = await client.post(
        f"/medecin-traitant/{territory.id}",
        data=form(**{"patient.family_name": "ROUX", "patient.phone": "+33611223344"}),
    )
    assert first.status_code == again.status_code == 200
    assert reference_of(first.text) == reference_of(again.text)
    strip = re.compile(r'class="reference">[A-Z0-9-]+<')
    assert strip.sub("", first.text) == strip.sub("", again.text)
    assert len(await requests_of(session, territory)) == 1


async def test_a_patient_the_coordinator_registered_keeps_one_place(client, territory, session):
    r = await client.post(
        "/v1/mt-requests",
        json={"patient": {"family_name": "Roux", "given_name": "Marcel",
                          "birth_date": "1980-04-12", "phone": "0611223344"},
              "ald": False, "precarity": False, "source": "cpts"},
        headers={**territory.coordinator, "Idempotency-Key": "k1"},
    )  # fmt: skip
    assert r.status_code == 201
    r = await client.post(f"/medecin-traitant/{territory.id}", data=form(ald="true"))
    assert r.status_code == 200
    [request] = await requests_of(session, territory)
    assert request.source == "cpts" and request.reference == reference_of(r.text)
    # A third party who knows name, birth date and phone changes nothing of the queue.
    assert not request.ald and not request.criteria_to_check


async def test_registrations_are_limited_per_address(client, territory, monkeypatch):
    monkeypatch.setattr(get_settings(), "mt_public_per_hour", 3)
    for n in range(3):
        r = await client.post(
            f"/medecin-traitant/{territory.id}", data=form(**{"patient.phone": f"061122334{n}"})
        )
        assert r.status_code == 200
    r = await client.post(
        f"/medecin-traitant/{territory.id}", data=form(**{"patient.phone": "0699999999"})
    )
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "Trop de demandes" in unescape(r.text)


async def test_registrations_are_limited_per_phone(client, territory, monkeypatch):
    monkeypatch.setattr(get_settings(), "mt_public_per_hour", 2)
    codes = []
    for _ in range(3):
        codes.append(
            (await client.post(f"/medecin-traitant/{territory.id}", data=form())).status_code
        )
        # Only the phone's limit is tested here: the address starts afresh each time.
        client._transport.app.state.mt_public_limiters["address"]._buckets.clear()
    assert codes == [200, 200, 429]


async def test_the_daily_cap_closes_online_registration_for_the_day(
    client, territory, session, monkeypatch
):
    monkeypatch.setattr(get_settings(), "mt_public_daily_cap", 1)
    r = await client.post(f"/medecin-traitant/{territory.id}", data=form())
    assert r.status_code == 200
    r = await client.post(
        f"/medecin-traitant/{territory.id}",
        data=form(**{"patient.family_name": "Autre", "patient.phone": "0622334455"}),
    )
    assert r.status_code == 503
    assert "complètes pour aujourd'hui" in unescape(r.text)
    assert len(await requests_of(session, territory)) == 1


async def test_the_status_lookup_tells_where_the_patient_stands_and_nothing_more(
    client, territory, session
):
    r = await client.post(f"/medecin-traitant/{territory.id}", data=form())
    reference = reference_of(r.text)
    page = await client.post(
        "/medecin-traitant/suivi",
        data={"reference": reference.lower().replace("-", " "), "birth_date": "1980-04-12"},
    )
    assert page.status_code == 200
    text = unescape(page.text)
    assert "dans la file d'attente" in text
    for private in ("Roux", "ROUX", "Marcel", "0611", "+3361", "15014", "Martin"):
        assert private not in text
    [request] = await requests_of(session, territory)
    request.status, request.attached_practitioner_id = (
        "attached",
        uuid.UUID(territory.practitioner_id),
    )
    request.attached_at = request.registered_at
    await session.flush()
    page = await client.post(
        "/medecin-traitant/suivi", data={"reference": reference, "birth_date": "1980-04-12"}
    )
    assert "Vous avez un médecin traitant" in unescape(page.text)
    assert "Martin" not in page.text
    wrong = await client.post(
        "/medecin-traitant/suivi", data={"reference": reference, "birth_date": "1980-04-13"}
    )
    unknown = await client.post(
        "/medecin-traitant/suivi", data={"reference": "AAAAA-BBBBB", "birth_date": "1980-04-13"}
    )
    assert wrong.status_code == unknown.status_code == 200
    assert "Aucune demande ne correspond" in unescape(wrong.text)
    assert wrong.text == unknown.text.replace("AAAAA-BBBBB", reference)


async def test_the_status_lookup_is_rate_limited(client, monkeypatch):
    monkeypatch.setattr(get_settings(), "mt_status_per_hour", 2)
    data = {"reference": "AAAAA-BBBBB", "birth_date": "1980-04-12"}
    codes = [(await client.post("/medecin-traitant/suivi", data=data)).status_code for _ in "abc"]
    assert codes == [200, 200, 429]


async def test_the_status_lookup_names_its_invalid_fields(client):
    r = await client.post("/medecin-traitant/suivi", data={"reference": "", "birth_date": "x"})
    assert r.status_code == 422
    text = unescape(r.text)
    assert "Référence : Ce champ est obligatoire." in text
    assert "Date de naissance : Date de naissance invalide." in text


async def test_declared_criteria_count_once_the_coordinator_confirms_them(client, territory):
    r = await client.post(
        f"/medecin-traitant/{territory.id}", data=form(ald="true", precarity="true")
    )
    assert r.status_code == 200
    listed = await client.get("/v1/mt-requests", headers=territory.coordinator)
    [item] = listed.json()["items"]
    assert item["criteria_to_check"] and item["ald"] and item["precarity"]
    assert item["priority"] == 0 and item["criteria"] == []
    ranked = await client.get("/v1/mt-requests?priority=0", headers=territory.coordinator)
    assert [i["id"] for i in ranked.json()["items"]] == [item["id"]]
    await sign_in(client, territory.coordinator, "/coordination")
    queue = await client.get("/coordination")
    assert "À vérifier" in unescape(queue.text) and "Le patient, en ligne" in unescape(queue.text)
    assert 'value="self"' not in (await client.get("/coordination/mt/nouvelle")).text
    page = await client.get(f"/coordination/mt/{item['id']}")
    assert "Confirmer les critères" in unescape(page.text)
    # The coordinator confirms the ALD, not the precarity.
    r = await client.post(
        f"/coordination/mt/{item['id']}/criteres", data={"csrf": csrf_of(page.text), "ald": "true"}
    )
    assert r.status_code == 303
    after = (
        await client.get(f"/v1/mt-requests/{item['id']}", headers=territory.coordinator)
    ).json()
    assert not after["criteria_to_check"]
    assert after["priority"] == 1 and after["criteria"] == ["ald"] and not after["precarity"]
    ranked = await client.get("/v1/mt-requests?priority=1", headers=territory.coordinator)
    assert [i["id"] for i in ranked.json()["items"]] == [item["id"]]
    page = await client.get(f"/coordination/mt/{item['id']}")
    assert "Confirmer les critères" not in unescape(page.text)
    again = await client.post(
        f"/coordination/mt/{item['id']}/criteres", data={"csrf": csrf_of(page.text)}
    )
    assert again.status_code == 409
    assert "Les critères sont déjà confirmés." in unescape(again.text)


async def test_age_counts_at_once_for_a_patient_who_registered_themselves(client, territory):
    r = await client.post(
        f"/medecin-traitant/{territory.id}", data=form(**{"patient.birth_date": "1940-01-01"})
    )
    assert r.status_code == 200
    [item] = (await client.get("/v1/mt-requests", headers=territory.coordinator)).json()["items"]
    assert item["priority"] == 1 and item["criteria"] == ["70+"]


async def test_an_unknown_territory_is_a_french_404(client):
    r = await client.get(f"/medecin-traitant/{uuid.uuid4()}")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    r = await client.get("/medecin-traitant/pas-un-id")
    assert r.status_code in (404, 422) and "text/html" in r.headers["content-type"]


async def test_the_retention_job_erases_the_contact_email(client, territory, session, clock):
    from datetime import timedelta

    from app.retention import purge_expired

    r = await client.post(
        f"/medecin-traitant/{territory.id}", data=form(contact_email="m@exemple.fr")
    )
    assert r.status_code == 200
    [request] = await requests_of(session, territory)
    request.status, request.withdrawn_at, request.withdraw_reason = (
        "withdrawn",
        request.registered_at,
        "test",
    )
    await session.flush()
    await purge_expired(session, now=request.registered_at + timedelta(days=731))
    await session.refresh(request)
    assert request.contact_email is None and request.patient_birth_date is None


async def test_a_practice_key_registers_a_patient_of_its_own_waiting_list(
    client, territory, other_territory
):
    from tests.test_mt_requests import patient, register

    r = await register(client, territory, key=territory.practice, source="practice")
    assert r.status_code == 201, r.text
    mine = r.json()
    assert mine["source"] == "practice" and mine["territory_id"] == territory.id
    assert mine["patient"] is not None and not mine["criteria_to_check"]
    # It reads it back, in its list too; another practice does not.
    got = await client.get(f"/v1/mt-requests/{mine['id']}", headers=territory.practice)
    assert got.status_code == 200
    listed = (await client.get("/v1/mt-requests", headers=territory.practice)).json()["items"]
    assert [x["id"] for x in listed] == [mine["id"]]
    other = await client.get(f"/v1/mt-requests/{mine['id']}", headers=other_territory.practice)
    assert other.status_code == 404
    # Only as the source `practice`.
    assert_problem(await register(client, territory, key=territory.practice), 422)
    # A patient the CPTS already has is a 409 that does not name a request it cannot read.
    known = patient()
    await register(client, territory, patient=known)
    again = await register(client, territory, key=territory.practice, source="practice",
                           patient=known)  # fmt: skip
    assert assert_problem(again, 409).get("existing_id") is None


def test_a_territory_name_reads_as_its_cpts_once():
    from app.web.render import cpts_name

    assert cpts_name("du Pays d'Aurillac") == "CPTS du Pays d'Aurillac"
    assert cpts_name("CPTS Test") == "CPTS Test" and cpts_name("cpts test") == "cpts test"
