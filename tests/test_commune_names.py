"""The JSON answers name the communes beside their INSEE codes (issue 25: people read names,
not codes), from the referential, with one lookup for the whole answer."""

from contextlib import AbstractContextManager

from tests.conftest import practice_body, statements
from tests.test_bookings import PATIENT, book
from tests.test_mt_requests import gp_with_capacity, patient, register
from tests.test_slot_search import add_slot
from tests.test_unmet_requests import post_unmet


def commune_lookups(connection) -> AbstractContextManager[list[str]]:
    """The statements that read the referential of communes while the block runs."""
    return statements(connection, containing="FROM commune")


async def test_practices_are_named_with_one_lookup_per_answer(client, territory, connection):
    for insee in ("15187", "15120"):  # Saint-Flour, Mauriac
        body = practice_body(territory.id, commune_insee=insee, name=f"MSP {insee}")
        r = await client.post("/v1/practices", json=body, headers=territory.coordinator)
        assert r.status_code == 201, r.text
        assert r.json()["commune_name"] in ("Saint-Flour", "Mauriac")
    with commune_lookups(connection) as seen:
        r = await client.get("/v1/practices", headers=territory.coordinator)
    names = {p["commune_insee"]: p["commune_name"] for p in r.json()["items"]}
    assert names == {"15014": "Aurillac", "15187": "Saint-Flour", "15120": "Mauriac"}
    assert len(seen) == 1
    one = await client.get(f"/v1/practices/{territory.practice_id}", headers=territory.coordinator)
    assert one.json()["commune_name"] == "Aurillac"
    # The name is read-only: the code is what a client sends.
    body = practice_body(territory.id, commune_name="Aurillac")
    assert (
        await client.post("/v1/practices", json=body, headers=territory.coordinator)
    ).status_code == 422


async def test_search_results_name_the_practice_commune(client, territory, connection):
    for hours in (3, 4, 5):
        await add_slot(client, territory, territory.practitioner_id, hours)
    with commune_lookups(connection) as seen:
        items = (await client.get("/v1/slots", headers=territory.regulator)).json()["items"]
    assert len(items) == 3
    assert {(i["practice"]["commune_insee"], i["practice"]["commune_name"]) for i in items} == {
        ("15014", "Aurillac")
    }
    assert seen == []  # joined in the search's own statement: no lookup after it


async def test_bookings_name_the_patient_commune(client, territory, connection):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    r = await book(client, territory, slot_id, patient={**PATIENT, "commune_insee": "15187"})
    assert r.status_code == 201, r.text
    assert r.json()["patient"]["commune_name"] == "Saint-Flour"
    other = await add_slot(client, territory, territory.practitioner_id, 4)
    await book(client, territory, other)  # no commune: no name
    with commune_lookups(connection) as seen:
        listed = (await client.get("/v1/bookings", headers=territory.coordinator)).json()
    assert [b["patient"]["commune_name"] for b in listed["items"]] == ["Saint-Flour", None]
    assert len(seen) == 1


async def test_unmet_requests_name_their_commune(client, territory):
    r = await post_unmet(client, territory.regulator, commune_insee="15014")
    assert r.status_code == 201, r.text
    assert r.json()["commune_name"] == "Aurillac"
    shown = await client.get(f"/v1/unmet-requests/{r.json()['id']}", headers=territory.coordinator)
    assert shown.json()["commune_name"] == "Aurillac"
    listed = (await client.get("/v1/unmet-requests", headers=territory.coordinator)).json()
    assert [u["commune_name"] for u in listed["items"]] == ["Aurillac"]


async def test_mt_requests_and_candidates_name_their_communes(client, territory, connection):
    await gp_with_capacity(client, territory)
    r = await register(client, territory, patient=patient(commune_insee="15187"))
    assert r.status_code == 201, r.text
    assert r.json()["patient"]["commune_name"] == "Saint-Flour"
    with commune_lookups(connection) as seen:
        listed = (await client.get("/v1/mt-requests", headers=territory.coordinator)).json()
    assert [m["patient"]["commune_name"] for m in listed["items"]] == ["Saint-Flour"]
    assert len(seen) == 1
    rid = r.json()["id"]
    candidates = await client.get(
        f"/v1/mt-requests/{rid}/candidates", headers=territory.coordinator
    )
    assert candidates.status_code == 200, candidates.text
    assert {c["commune_name"] for c in candidates.json()} == {"Aurillac"}


async def test_gap_map_cells_name_their_commune(client, territory):
    from tests.test_unmet_figures import period

    await post_unmet(client, territory.regulator, commune_insee="15014")
    r = await client.get(f"/v1/unmet-requests/gap-map?{period()}", headers=territory.dashboard)
    assert r.status_code == 200, r.text
    assert {(c["commune_insee"], c["commune_name"]) for c in r.json() if c["unmet"]} == {
        ("15014", "Aurillac")
    }
