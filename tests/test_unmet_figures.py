"""The unmet-demand figures and the gap map's cells on a hand-counted scenario."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.conftest import assert_problem
from tests.test_bookings import book, overbook
from tests.test_cpts_booking import member_book
from tests.test_slot_search import add_slot
from tests.test_unmet_requests import post_unmet
from tests.test_web_dashboard import sign_in


def period() -> str:
    now = datetime.now(UTC)
    start = (now - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    end = (now + timedelta(days=3)).isoformat().replace("+00:00", "Z")
    return f"from={start}&to={end}"


async def scenario(client, t) -> None:
    """3 SAS slots and 1 CPTS slot offered; 1 slot booked by the SAS, 1 booked then
    cancelled, 1 surnuméraire; 3 unmet requests declared; 1 empty search."""
    gp = t.practitioner_id
    first = await add_slot(client, t, gp, 3)
    second = await add_slot(client, t, gp, 4)
    await add_slot(client, t, gp, 5)
    await add_slot(client, t, gp, 6, visibility="cpts")
    assert (await book(client, t, first)).status_code == 201
    cancelled = (await book(client, t, second)).json()["id"]
    r = await client.post(f"/v1/bookings/{cancelled}/cancel", json={"reason": "erreur"},
                          headers=t.regulator)  # fmt: skip
    assert r.status_code == 200, r.text
    r = await client.patch(f"/v1/practitioners/{gp}",
                           # round the clock: the surnuméraire is booked 20 h from now
                           json={"accepts_overbooking": True, "overbooking_daily_cap": 2,
                                 "overbooking_start_time": "00:00",
                                 "overbooking_end_time": "00:00"},
                           headers=t.coordinator)  # fmt: skip
    assert r.status_code == 200
    r = await overbook(client, t, datetime.now(UTC).replace(microsecond=0) + timedelta(hours=20))
    assert r.status_code == 201, r.text
    for body in (
        {"reason": "no_slot"},
        {"reason": "too_far", "commune_insee": None, "near": {"lat": 44.93, "lon": 2.44}},
        {"reason": "no_slot", "commune_insee": "15100"},
    ):
        assert (await post_unmet(client, t.regulator, **body)).status_code == 201
    await sign_in(client, t.regulator)
    assert (
        await client.get("/regulation?commune=15014&rayon=30&modalite=visite")
    ).status_code == 200


async def test_summary_counts_sas_requests_as_placed_plus_unmet(client, territory):
    await scenario(client, territory)
    r = await client.get(f"/v1/unmet-requests/summary?{period()}", headers=territory.coordinator)
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["slots_offered"] == 3
    assert (s["placed_slots"], s["placed_overbooked"], s["placed"]) == (1, 1, 2)
    assert s["unmet"] == 3 and s["sas_requests"] == 5
    assert s["share_placed"] == 0.4
    assert s["placed_within_48h"] == 2 and s["share_placed_within_48h"] == 0.4
    assert s["unmet_by_reason"] == {"no_slot": 2, "too_far": 1}
    assert s["unmet_by_commune"] == {"15014": 2, "15100": 1}
    hour = f"{datetime.now(ZoneInfo('Europe/Paris')).hour:02d}"
    assert s["unmet_by_hour"] in ({hour: 3}, {hour: 2, f"{(int(hour) + 1) % 24:02d}": 1})
    assert s["empty_searches"] == 1  # counted apart, not in sas_requests
    assert s["start"].endswith(("+01:00", "+02:00"))


async def test_gap_map_cells_add_up_to_the_summary(client, territory):
    await scenario(client, territory)
    r = await client.get(f"/v1/unmet-requests/gap-map?{period()}", headers=territory.dashboard)
    assert r.status_code == 200, r.text
    cells = r.json()
    assert sum(c["slots_offered"] for c in cells) == 3
    assert sum(c["demand"] for c in cells) == 5
    assert {c["commune_insee"] for c in cells if c["unmet"]} == {"15014", "15100"}
    assert all(1 <= c["day_of_week"] <= 7 and 0 <= c["hour"] <= 23 for c in cells)


async def test_summary_is_for_the_territory_s_readers_only(client, territory, other_territory):
    assert_problem(await client.get("/v1/unmet-requests/summary", headers=territory.regulator), 403)
    assert_problem(await client.get("/v1/unmet-requests/summary", headers=territory.practice), 403)
    r = await client.get(
        f"/v1/unmet-requests/summary?territory_id={other_territory.id}",
        headers=territory.coordinator,
    )
    assert_problem(r, 404)
    r = await client.get("/v1/unmet-requests/summary", headers=territory.dashboard)
    assert r.status_code == 200 and r.json()["sas_requests"] == 0
    assert r.json()["share_placed"] is None


async def test_summary_period_errors_are_422(client, territory):
    for query in (
        "from=2027-01-02T00:00:00Z&to=2027-01-01T00:00:00Z",
        "from=2020-01-01T00:00:00Z&to=2027-01-01T00:00:00Z",
        "from=2027-01-01T00:00:00",
    ):
        r = await client.get(f"/v1/unmet-requests/summary?{query}", headers=territory.coordinator)
        assert_problem(r, 422)


async def test_the_national_platform_s_bookings_count_as_placed_and_cpts_ones_do_not(
    client, territory, operator
):
    """A slot booked through the SAS platform (its regulator account as the operator) is a
    SAS request placed; a CPTS member's booking of a CPTS slot is none of the SAS's."""
    sas = await add_slot(client, territory, territory.practitioner_id, 3)
    r = await member_book(client, territory.regulator, sas, operator=operator)
    assert r.status_code == 201, r.text
    cpts = await add_slot(client, territory, territory.practitioner_id, 4, visibility="cpts")
    assert (await member_book(client, territory.practice, cpts)).status_code == 201
    r = await client.get(f"/v1/unmet-requests/summary?{period()}", headers=territory.coordinator)
    s = r.json()
    assert (s["placed_slots"], s["placed"], s["sas_requests"]) == (1, 1, 1)
    assert s["placed_within_48h"] == 1 and s["share_placed"] == 1.0
