"""The same figures on the dashboard, the JSON and both CSV dialects; labels that match the
data; the ACI year. The clock is the routes' `current_time` dependency, set per test."""

import csv
import io
import re
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from app.activity.export import to_csv
from app.api.indicators import current_time
from tests.test_indicators_end_state import Log
from tests.test_web_dashboard import sign_in

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2027, 3, 10, 12, 0, tzinfo=PARIS)  # a Wednesday
GP = uuid.uuid4()


@pytest.fixture
def clock(client):
    app = client._transport.app
    app.dependency_overrides[current_time] = lambda: NOW
    yield NOW
    app.dependency_overrides.pop(current_time, None)


async def seed(session, territory_id: str) -> None:
    log = Log(territory_id)
    # This week: 3 slots on Monday 8 March, 1 today; a later week: 5 slots on 20 March.
    log.offer("2027-03-01T08:00:00+01:00", GP, {"2027-03-08": 3, "2027-03-10": 1, "2027-03-20": 5})
    first, again, today = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    start = "2027-03-08T10:00:00+01:00"
    log.booking("2027-03-07T09:00:00+01:00", "booking.booked", GP, first, start)
    log.booking("2027-03-07T09:10:00+01:00", "booking.cancelled", GP, first, start, was="booked")
    log.booking("2027-03-07T09:20:00+01:00", "booking.booked", GP, again, start)
    log.booking(
        "2027-03-10T08:00:00+01:00", "booking.booked", GP, today, "2027-03-10T15:00:00+01:00"
    )
    await log.save(session)


def _figure(page: str, label: str) -> str:
    match = re.search(rf'<span class="value">([^<]*)</span>\s*<span class="label">{label}<', page)
    assert match, label
    return match.group(1)


async def test_dashboard_headline_and_week_end_today_with_the_api_formula(
    client, territory, session, clock
):
    await seed(session, territory.id)
    await sign_in(client, territory.coordinator)
    page = (await client.get("/dashboard")).text
    assert "du 1 janv. 2027 au 10 mars 2027 inclus" in page
    # Up to today: 4 slots offered (not the 5 of 20 March), 2 taken (one slot booked twice).
    assert _figure(page, "créneaux SNP proposés") == "4"
    assert _figure(page, "créneaux pris") == "2"
    assert _figure(page, "taux de remplissage") == "50 %"
    assert _figure(page, "réservations par le SAS") == "2"
    # The current week's row ends today and says so; no later week is listed. Its SAS
    # bookings are those made that week: today's (the other was made on Sunday 7 March).
    row = re.search(r'<th scope="row">8 mars – 10 mars</th>((?:<td>[^<]*</td>)+)', page)
    assert row and re.findall(r"<td>([^<]*)</td>", row.group(1)) == ["4", "2", "50 %", "1"]
    assert "15 mars" not in page
    # The JSON over the same range gives the same figures.
    r = await client.get(
        "/v1/indicators",
        params={"from": "2027-01-01", "to": "2027-03-11", "granularity": "year"},
        headers=territory.coordinator,
    )
    (year,) = r.json()["periods"]
    assert year["period_end"] == "2027-03-11"
    assert (year["snp"]["slots_offered"], year["snp"]["slots_taken"]) == (4, 2)
    assert year["snp"]["fill_rate"] == 0.5


async def test_excel_csv_is_french_and_raw_csv_is_the_json(client, territory, session, clock):
    await seed(session, territory.id)
    params = {"from": "2027-03-01", "to": "2027-04-01", "granularity": "month"}
    headers = {**territory.coordinator, "Accept": "text/csv"}
    excel = await client.get("/v1/indicators", params=params, headers=headers)
    assert excel.headers["content-type"] == "text/csv; charset=utf-8"
    assert excel.content.startswith("\ufeff".encode())
    (row,) = list(csv.DictReader(io.StringIO(excel.content.decode("utf-8-sig")), delimiter=";"))
    assert row["Début de période"] == "2027-03-01"
    assert row["SNP créneaux proposés"] == "9"
    assert row["SNP taux de remplissage"] == "0,2222"  # 2 of 9, decimal comma
    # Population unknown: no rate per 1,000 inhabitants.
    assert row["MT patients en attente en fin de période (pour 1 000 habitants)"] == ""
    raw = await client.get("/v1/indicators", params={**params, "dialect": "raw"}, headers=headers)
    (raw_row,) = list(csv.DictReader(io.StringIO(raw.text)))
    assert (raw_row["snp.slots_offered"], raw_row["snp.fill_rate"]) == ("9", "0.2222")
    assert not raw.content.startswith("\ufeff".encode())
    json_period = (
        await client.get("/v1/indicators", params=params, headers=territory.coordinator)
    ).json()["periods"][0]
    assert set(raw_row) == {
        "period_start",
        "period_end",
        *(f"snp.{k}" for k in _leaves(json_period["snp"])),
        *(f"mt.{k}" for k in _leaves(json_period["mt"])),
        *(f"unmet.{k}" for k in _leaves(json_period["unmet"])),
        *(f"crisis.{k}" for k in _leaves(json_period["crisis"])),
    }


def _leaves(values: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in values.items():
        if isinstance(value, dict):
            out += _leaves(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}")
    return out


def test_indicator_csv_cells_a_spreadsheet_would_run_are_quoted_in_both_dialects():
    for cell in ("=1+1", "@SUM(A1)", "\tx", "-x"):
        row = {"period_start": "2027-01-01", "label": cell, "share": 0.5}
        assert f"'{cell}" in to_csv([row], "raw").decode()
        assert f"'{cell}" in to_csv([row], "excel").decode("utf-8-sig")
    plain = to_csv([{"period_start": "2027-01-01", "label": "Aurillac", "share": 0.5}], "excel")
    assert "Aurillac;0,5" in plain.decode("utf-8-sig")


async def test_population_gives_rates_per_1000_inhabitants(client, territory, session, admin):
    await seed(session, territory.id)
    r = await client.patch(
        f"/v1/territories/{territory.id}", json={"population": 50_000}, headers=admin
    )
    assert r.status_code == 200, r.text
    r = await client.get(
        "/v1/indicators",
        params={"from": "2027-03-01", "to": "2027-04-01"},
        headers=territory.coordinator,
    )
    snp = r.json()["periods"][0]["snp"]
    # 9 SAS slots for 50,000 inhabitants: 0.18 per 1,000.
    assert snp["per_1000_inhabitants"]["slots_offered_sas"] == 0.18


async def test_aci_signature_date_sets_the_indicator_year(client, territory, session, clock):
    r = await client.patch(
        f"/v1/territories/{territory.id}",
        json={"aci_signed_on": "2026-04-15"},
        headers=territory.coordinator,
    )
    assert r.status_code == 200 and r.json()["aci_signed_on"] == "2026-04-15"
    await seed(session, territory.id)
    r = await client.put(
        "/v1/indicators/targets",
        json={"year": 2026, "targets": {"snp.slots_offered": 18}},
        headers=territory.coordinator,
    )
    assert r.status_code == 200, r.text
    body = (
        await client.get(
            "/v1/indicators", params={"granularity": "year"}, headers=territory.coordinator
        )
    ).json()
    # On 10 March 2027 the indicator year is the one signed on 15 April 2026.
    assert (body["from"], body["to"]) == ("2026-04-15", "2027-04-15")
    (year,) = body["periods"]
    assert (year["period_start"], year["period_end"]) == ("2026-04-15", "2027-04-15")
    (target,) = body["targets"]
    assert (target["year"], target["actual"], target["progress"]) == (2026, 9, 0.5)


def test_chart_shows_at_most_eight_axis_labels_so_they_never_overlap():
    from app.web.charts import Series, bar_chart

    labels = [f"{d} nov." for d in range(1, 15)]
    svg = bar_chart("t", labels, [Series("a", [1.0] * 14)])
    shown = re.findall(r'text-anchor="middle">([^<]*)</text>', svg)
    assert shown == labels[::2]
