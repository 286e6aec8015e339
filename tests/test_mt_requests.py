"""The médecin traitant queue through the API."""

import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from app.activity.models import ActivityEvent
from app.medecin_traitant.models import MtRequest
from app.medecin_traitant.transitions import expire_proposals
from tests.conftest import assert_problem, practice_body, practitioner_body

_n = iter(range(10_000))


def patient(**over):
    i = next(_n)
    return {
        "family_name": f"Patient{i}",
        "given_name": "Anne",
        "birth_date": "1985-03-04",
        "phone": f"06 12 {i // 100 % 100:02d} {i % 100:02d} 00",
        **over,
    }


def seventy_plus() -> str:
    return date(date.today().year - 75, 1, 1).isoformat()


async def register(client, t, key=None, **over):
    body = {"patient": patient(), "ald": False, "precarity": False, "source": "hotline", **over}
    r = await client.post(
        "/v1/mt-requests",
        json=body,
        headers={**(key or t.coordinator), "Idempotency-Key": str(uuid.uuid4())},
    )
    return r


async def gp_with_capacity(client, t, capacity=5, **over):
    r = await client.post(
        "/v1/practitioners",
        json=practitioner_body(t.practice_id, mt_capacity=capacity, **over),
        headers=t.coordinator,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def test_registration_derives_priority(client, territory):
    r = await register(client, territory, patient=patient(birth_date=seventy_plus()), ald=True)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "waiting"
    assert body["priority"] == 2 and body["fragile"] is True
    assert body["criteria"] == ["ald", "70+"]
    assert body["waiting_days"] == 0


async def test_queue_orders_fragile_first_then_longest_waiting(client, territory, session):
    plain_old = (await register(client, territory)).json()["id"]
    precarity = (await register(client, territory, precarity=True)).json()["id"]
    all_three = (
        await register(
            client, territory, ald=True, precarity=True, patient=patient(birth_date=seventy_plus())
        )
    ).json()["id"]
    plain_new = (await register(client, territory)).json()["id"]
    ald_old = (await register(client, territory, ald=True)).json()["id"]
    # Make the waiting times distinct and known.
    base = datetime.now(UTC) - timedelta(days=100)
    for days, rid in (
        (0, plain_old),
        (10, ald_old),
        (20, precarity),
        (30, all_three),
        (40, plain_new),
    ):
        row = await session.get(MtRequest, uuid.UUID(rid))
        row.registered_at = base + timedelta(days=days)
    await session.commit()
    r = await client.get("/v1/mt-requests", headers=territory.coordinator)
    assert [x["id"] for x in r.json()["items"]] == [
        all_three,
        ald_old,
        precarity,
        plain_old,
        plain_new,
    ]
    r = await client.get("/v1/mt-requests?priority=1", headers=territory.coordinator)
    assert [x["id"] for x in r.json()["items"]] == [ald_old, precarity]
    page = await client.get("/v1/mt-requests?limit=2", headers=territory.coordinator)
    rest = await client.get(
        "/v1/mt-requests",
        params={"limit": 10, "cursor": page.json()["next_cursor"]},
        headers=territory.coordinator,
    )
    assert [x["id"] for x in page.json()["items"] + rest.json()["items"]] == [
        all_three,
        ald_old,
        precarity,
        plain_old,
        plain_new,
    ]


async def test_same_ins_twice_is_a_409_pointing_at_the_first(client, territory):
    nir = "2850375123456"
    ins = nir + f"{97 - int(nir) % 97:02d}"
    first = (await register(client, territory, patient=patient(ins=ins))).json()["id"]
    r = await register(client, territory, patient=patient(ins=ins, family_name="Autre"))
    assert assert_problem(r, 409)["existing_id"] == first


async def test_same_name_birth_date_and_phone_is_a_duplicate(client, territory):
    p = patient()
    first = (await register(client, territory, patient=p)).json()["id"]
    r = await register(client, territory, patient={**p, "family_name": p["family_name"].upper()})
    assert assert_problem(r, 409)["existing_id"] == first


async def test_full_cycle_propose_decline_propose_accept(client, territory):
    gp = await gp_with_capacity(client, territory, capacity=1)
    rid = (await register(client, territory)).json()["id"]
    path = f"/v1/mt-requests/{rid}"
    cands = (await client.get(f"{path}/candidates", headers=territory.coordinator)).json()
    assert gp in [c["practitioner"]["id"] for c in cands]
    r = await client.post(
        f"{path}/proposals", json={"practitioner_id": gp}, headers=territory.coordinator
    )
    assert r.status_code == 200 and r.json()["status"] == "proposed"
    registered = r.json()["registered_at"]
    r = await client.post(
        f"{path}/decline", json={"reason": "trop loin"}, headers=territory.practice
    )
    assert r.json()["status"] == "waiting" and r.json()["registered_at"] == registered
    await client.post(
        f"{path}/proposals", json={"practitioner_id": gp}, headers=territory.coordinator
    )
    r = await client.post(f"{path}/accept", headers=territory.practice)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "attached"
    assert r.json()["attached_practitioner"]["id"] == gp
    cands = (await client.get(f"{path}/candidates", headers=territory.coordinator)).json()
    assert gp not in [c["practitioner"]["id"] for c in cands]


async def test_forbidden_transitions_are_409(client, territory):
    rid = (await register(client, territory)).json()["id"]
    path = f"/v1/mt-requests/{rid}"
    assert_problem(await client.post(f"{path}/accept", headers=territory.coordinator), 409)
    assert_problem(
        await client.post(f"{path}/decline", json={"reason": "x"}, headers=territory.coordinator),
        409,
    )
    await client.post(
        f"{path}/withdraw", json={"reason": "a trouvé seul"}, headers=territory.coordinator
    )
    assert_problem(
        await client.post(f"{path}/withdraw", json={"reason": "x"}, headers=territory.coordinator),
        409,
    )


async def test_proposing_a_gp_without_capacity_is_a_409(client, territory):
    gp = await gp_with_capacity(client, territory, capacity=0)
    rid = (await register(client, territory)).json()["id"]
    r = await client.post(
        f"/v1/mt-requests/{rid}/proposals",
        json={"practitioner_id": gp},
        headers=territory.coordinator,
    )
    assert_problem(r, 409)


async def test_lapsed_proposal_returns_to_the_queue_with_its_waiting_time(
    client, territory, session
):
    gp = await gp_with_capacity(client, territory)
    rid = (await register(client, territory)).json()["id"]
    await client.post(
        f"/v1/mt-requests/{rid}/proposals",
        json={"practitioner_id": gp},
        headers=territory.coordinator,
    )
    row = await session.get(MtRequest, uuid.UUID(rid))
    registered = row.registered_at
    result = await expire_proposals(session, now=datetime.now(UTC) + timedelta(days=8))
    assert result["proposals_expired"] >= 1
    await session.refresh(row)
    assert (row.status, row.registered_at) == ("waiting", registered)


async def test_candidates_honour_preferences_and_distance(client, territory):
    far_practice = (
        await client.post(
            "/v1/practices",
            json=practice_body(
                territory.id,
                name="Cabinet de Mauriac",
                commune_insee="15120",
                lat=45.2181,
                lon=2.3336,
            ),
            headers=territory.coordinator,
        )
    ).json()["id"]
    near_gp = await gp_with_capacity(client, territory, gender="female")
    far = await client.post(
        "/v1/practitioners",
        json=practitioner_body(far_practice, mt_capacity=3, gender="male"),
        headers=territory.coordinator,
    )
    far_gp = far.json()["id"]
    rid = (await register(client, territory, patient=patient(commune_insee="15014"))).json()["id"]
    cands = (
        await client.get(f"/v1/mt-requests/{rid}/candidates", headers=territory.coordinator)
    ).json()
    ids = [c["practitioner"]["id"] for c in cands]
    assert ids.index(near_gp) < ids.index(far_gp)
    assert cands[ids.index(far_gp)]["distance_km"] > 30
    rid = (await register(client, territory, preferences={"practitioner_gender": "male"})).json()[
        "id"
    ]
    cands = (
        await client.get(f"/v1/mt-requests/{rid}/candidates", headers=territory.coordinator)
    ).json()
    assert [c["practitioner"]["id"] for c in cands] == [far_gp]
    rid = (await register(client, territory, preferences={"communes_insee": ["15120"]})).json()[
        "id"
    ]
    cands = (
        await client.get(f"/v1/mt-requests/{rid}/candidates", headers=territory.coordinator)
    ).json()
    assert [c["practitioner"]["id"] for c in cands] == [far_gp]


async def test_practice_sees_only_requests_proposed_to_its_gps(client, territory, admin):
    other_practice = (
        await client.post(
            "/v1/practices", json=practice_body(territory.id), headers=territory.coordinator
        )
    ).json()["id"]
    r = await client.post(
        "/v1/practitioners",
        json=practitioner_body(other_practice, mt_capacity=2),
        headers=territory.coordinator,
    )
    other_gp = r.json()["id"]
    mine = await gp_with_capacity(client, territory)
    to_me = (await register(client, territory)).json()["id"]
    to_other = (await register(client, territory)).json()["id"]
    await client.post(
        f"/v1/mt-requests/{to_me}/proposals",
        json={"practitioner_id": mine},
        headers=territory.coordinator,
    )
    await client.post(
        f"/v1/mt-requests/{to_other}/proposals",
        json={"practitioner_id": other_gp},
        headers=territory.coordinator,
    )
    listed = (await client.get("/v1/mt-requests", headers=territory.practice)).json()
    assert [x["id"] for x in listed["items"]] == [to_me]
    assert_problem(
        await client.post(f"/v1/mt-requests/{to_other}/accept", headers=territory.practice), 404
    )
    assert_problem(await client.get(f"/v1/mt-requests/{to_other}", headers=territory.practice), 404)


async def test_other_territory_and_dashboard_cannot_see_requests(
    client, territory, other_territory
):
    rid = (await register(client, territory)).json()["id"]
    assert_problem(
        await client.get(f"/v1/mt-requests/{rid}", headers=other_territory.coordinator), 404
    )
    assert_problem(await client.get("/v1/mt-requests", headers=territory.dashboard), 403)


async def test_regulator_registers_and_sees_its_own(client, territory):
    r = await register(client, territory, key=territory.regulator, source="sas")
    assert r.status_code == 201, r.text
    listed = (await client.get("/v1/mt-requests", headers=territory.regulator)).json()
    assert [x["id"] for x in listed["items"]] == [r.json()["id"]]


async def test_bad_inputs(client, territory):
    for body_over, loc in (
        ({"source": "pigeon"}, ["source"]),
        ({"patient": patient(birth_date="2999-01-01")}, ["patient", "birth_date"]),
        ({"preferences": {"communes_insee": ["123"]}}, ["preferences", "communes_insee", 0]),
        ({"ald": "peut-être"}, ["ald"]),
    ):
        r = await register(client, territory, **body_over)
        assert assert_problem(r, 422)["errors"][0]["loc"] == loc
    r = await client.post(
        "/v1/mt-requests",
        json={"patient": patient(), "ald": False, "precarity": False, "source": "hotline"},
        headers=territory.coordinator,
    )
    assert_problem(r, 422)


async def test_csv_export_for_coordinators(client, territory):
    await register(client, territory, ald=True)
    r = await client.get("/v1/mt-requests", headers={**territory.coordinator, "Accept": "text/csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.strip().splitlines()
    assert lines[0].startswith("id,status,priority")
    assert len(lines) == 2 and ",ald," in lines[1]
    r = await client.get("/v1/mt-requests", headers={**territory.regulator, "Accept": "text/csv"})
    assert_problem(r, 403)


async def test_events_carry_no_patient_data(client, territory, session):
    p = patient()
    rid = (await register(client, territory, patient=p)).json()["id"]
    events = (
        await session.scalars(
            select(ActivityEvent).where(ActivityEvent.subject_id == uuid.UUID(rid))
        )
    ).all()
    assert [e.type for e in events] == ["mt.registered"]
    assert p["family_name"] not in str(events[0].data)


async def test_a_commune_without_practices_is_placed_by_its_postal_code(client, territory, admin):
    r = await client.patch(
        f"/v1/practices/{territory.practice_id}", json={"postal_code": "15000"}, headers=admin
    )
    assert r.status_code == 200, r.text
    gp = await gp_with_capacity(client, territory)
    # Ytrac (15267) has no practice; its postal codes 15000 and 15130 have Aurillac's.
    rid = (await register(client, territory, patient=patient(commune_insee="15267"))).json()["id"]
    cands = (
        await client.get(f"/v1/mt-requests/{rid}/candidates", headers=territory.coordinator)
    ).json()
    assert [c["practitioner"]["id"] for c in cands] == [gp]
    assert cands[0]["distance_km"] == 0
