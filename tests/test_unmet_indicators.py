"""The unmet-demand indicators of `/v1/indicators` (JSON, CSV) and the dashboard, on a
scenario counted by hand: 3 SAS slots and 1 CPTS slot offered; 1 slot booked by the SAS, 1
booked then cancelled, 1 surnuméraire; 3 unmet requests declared (2 no slot in 15014 and
15100, 1 too far near Aurillac, 15014); 1 empty search; then one call for slots to the GP,
after which the GP publishes 2 SAS slots and 1 CPTS slot."""

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.test_slot_calls import floor, opt_in, run
from tests.test_slot_search import add_slot
from tests.test_unmet_figures import scenario
from tests.test_web_dashboard import sign_in

PARIS = ZoneInfo("Europe/Paris")


async def called_scenario(client, t) -> None:
    await scenario(client, t)
    await floor(client, t, 5)  # 1 free SAS slot in the next 48 h: under the floor
    await opt_in(client, t, t.practitioner_id)
    assert await run(client, t) == 1
    await add_slot(client, t, t.practitioner_id, 30)
    await add_slot(client, t, t.practitioner_id, 31)
    await add_slot(client, t, t.practitioner_id, 32, visibility="cpts")  # not for the SAS


def today_query() -> str:
    today = datetime.now(PARIS).date()
    return f"from={today}&to={today + timedelta(days=1)}&granularity=week"


async def test_indicators_count_sas_requests_placed_unmet_and_calls_by_hand(client, territory):
    await called_scenario(client, territory)
    r = await client.get(f"/v1/indicators?{today_query()}", headers=territory.dashboard)
    assert r.status_code == 200, r.text
    [period] = r.json()["periods"]
    u = period["unmet"]
    # placed: the booking that stands and the surnuméraire (the cancelled one is not placed)
    assert (u["placed"], u["unmet"], u["sas_requests"]) == (2, 3, 5)
    assert u["share_placed"] == 0.4
    # both placed patients have their appointment within 48 h (3 h and 20 h after)
    assert (u["placed_within_48h"], u["share_placed_within_48h"]) == (2, 0.4)
    assert u["empty_searches"] == 1  # apart: not in sas_requests
    assert {k: v for k, v in u["unmet_by_reason"].items() if v} == {"no_slot": 2, "too_far": 1}
    assert sum(u["unmet_by_reason"].values()) == 3
    assert u["unmet_by_commune"] == {"15014": 2, "15100": 1}
    assert sum(u["unmet_by_hour"].values()) == 3 and len(u["unmet_by_hour"]) == 24
    # one call; 2 SAS slots published after it (the 4 slots before it and the CPTS one not)
    assert (u["calls_sent"], u["slots_from_calls"]) == (1, 2)


async def test_the_call_log_counts_the_same_slots_as_the_indicators(client, territory):
    await called_scenario(client, territory)
    r = await client.get("/v1/slot-calls", headers=territory.coordinator)
    assert [c["slots_published_within_24h"] for c in r.json()] == [2]


async def test_indicators_csv_carries_the_unmet_figures(client, territory):
    await called_scenario(client, territory)
    r = await client.get(
        f"/v1/indicators?{today_query()}&dialect=raw",
        headers={**territory.coordinator, "Accept": "text/csv"},
    )
    assert r.status_code == 200, r.text
    [row] = list(csv.DictReader(io.StringIO(r.text)))
    assert row["unmet.sas_requests"] == "5" and row["unmet.unmet"] == "3"
    assert row["unmet.unmet_by_commune.15014"] == "2"
    assert row["unmet.unmet_by_reason.too_far"] == "1"
    assert (row["unmet.calls_sent"], row["unmet.slots_from_calls"]) == ("1", "2")
    excel = await client.get(
        f"/v1/indicators?{today_query()}",
        headers={**territory.coordinator, "Accept": "text/csv"},
    )
    header = excel.content.decode("utf-8-sig").splitlines()[0].split(";")
    assert "SAS demandes (placées + non satisfaites)" in header
    assert "SAS non satisfaites, motif trop loin" in header


async def test_a_commune_unmet_in_one_period_only_is_zero_in_the_others_of_the_csv(
    client, territory
):
    await called_scenario(client, territory)
    today = datetime.now(PARIS).date()
    query = f"from={today - timedelta(days=7)}&to={today + timedelta(days=1)}&granularity=week"
    r = await client.get(
        f"/v1/indicators?{query}&dialect=raw",
        headers={**territory.coordinator, "Accept": "text/csv"},
    )
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["unmet.unmet_by_commune.15100"] for row in rows] == ["0", "1"]


async def test_dashboard_shows_the_unmet_figures(client, territory):
    await called_scenario(client, territory)
    await sign_in(client, territory.coordinator)
    r = await client.get("/dashboard")
    assert r.status_code == 200
    text = " ".join(r.text.split())
    assert "Demandes SAS et appels à créneaux" in text
    assert '<span class="value">5</span> <span class="label">demandes SAS' in text
    assert '<span class="value">40 %</span> <span class="label">part des demandes placées' in text
    assert '<th scope="row">Trop loin</th><td>1</td>' in text
    assert '<span class="value">2</span> <span class="label">créneaux publiés' in text
