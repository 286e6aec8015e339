"""The report of a crisis (app/crisis/report.py, GET /v1/crises/{id}/report and .csv) and the
`crisis` section of the indicators, on a scenario counted by hand.

The scenario (territory in Europe/Paris, UTC+1 in March 2026; Tuesday 10 March 2026):
- the plan's volunteers pledge: GP A cabinet Tue+Wed 14:00–16:00 by 20 min (6 slots a day),
  GP B visits Tue 09:00–10:00 by 30 min (2) and Thu 10:00–11:10 by 30 min (2, the 10 minutes
  left make no slot): pledge Tue 8, Wed 6, Thu 2 (16);
- the crisis starts Tue 07:00, is declared Tue 08:00, ends Thu 12 March 18:00, commune 15014;
- three calls sent at 08:00: A opens at 09:30 (90 min: within 2 h), B Wed 07:00 (23 h:
  within 24 h only), C never (mail failed);
- crisis slots: A Tue 14:00, Tue 14:20, Wed 14:00, Wed 14:20 (created Tue 09:30); B Wed 09:00,
  Thu 10:00 and Thu 10:30 closed (unavailable) (created Wed 07:00); one ordinary slot Tue
  15:00 (no crisis);
- bookings: Tue 14:00 honoured, Tue 14:20 no-show, Wed 14:00 booked, cancelled, booked again,
  Wed 09:00 booked;
- unmet requests: 15014 Tue 10:00 no slot, 15014 Wed 12:00 too far (both counted), 15100
  Tue 11:00 (another commune), 15014 Mon 09:00 and Thu 19:00 (outside the crisis), an empty
  search 15014 Tue 10:30 (counted apart)."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.crisis.models import Crisis, CrisisCall, CrisisPlan
from app.scheduling.models import Slot
from app.unmet_demand.models import UnmetRequest
from tests.conftest import assert_problem, practitioner_body
from tests.test_bookings import book
from tests.test_web_dashboard import sign_in

PARIS = ZoneInfo("Europe/Paris")


def paris(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=PARIS)


def pledge(weekdays, start, end, minutes, modality="cabinet"):
    return {"modality": modality, "weekdays": weekdays, "start_time": start, "end_time": end,
            "slot_minutes": minutes}  # fmt: skip


@dataclass
class Scenario:
    crisis_id: str
    gps: list[str]
    slots: dict[str, str]


async def _gp(client, t, admin, family: str) -> str:
    body = practitioner_body(t.practice_id, family_name=family, given_name="Jean")
    r = await client.post("/v1/practitioners", json=body, headers=admin)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _slot(session, t, gp: str, start: datetime, created: datetime, crisis_id, **over):
    slot = Slot(
        practitioner_id=uuid.UUID(gp),
        territory_id=uuid.UUID(t.id),
        source="manual",
        start=start,
        end=start + timedelta(minutes=20),
        modality="cabinet",
        crisis_id=crisis_id,
        created_at=created,
        **{"visibility": "sas", "status": "free", **over},
    )
    session.add(slot)
    await session.flush()
    return str(slot.id)


async def crisis_scenario(client, session, clock, t, admin) -> Scenario:
    clock.set(paris(10, 7, 30))
    a = t.practitioner_id
    b = await _gp(client, t, admin, "Bernard")
    c = await _gp(client, t, admin, "Carré")
    tid = uuid.UUID(t.id)
    plan = CrisisPlan(
        territory_id=tid,
        version=1,
        reviewed_on=date(2026, 1, 5),
        created_at=paris(5, 9),
        document={
            "reviewed_on": "2026-01-05",
            "volunteers": [
                {"practitioner_id": a, "pledges": [pledge([2, 3], "14:00", "16:00", 20)]},
                {"practitioner_id": b, "pledges": [
                    pledge([2], "09:00", "10:00", 30, "visite"),
                    pledge([4], "10:00", "11:10", 30, "visite")]},
                {"practitioner_id": c, "pledges": []},
            ],
        },
    )  # fmt: skip
    session.add(plan)
    await session.flush()
    crisis = Crisis(
        territory_id=tid,
        plan_id=plan.id,
        kind="epidemic",
        title="Épidémie de grippe",
        started_at=paris(10, 7),
        expected_end_at=paris(13, 20),
        communes=["15014"],
        declared_at=paris(10, 8),
        ended_at=paris(12, 18),
    )
    session.add(crisis)
    await session.flush()
    practice = uuid.UUID(t.practice_id)
    for gp, opened, n, status in (
        (a, paris(10, 9, 30), 4, "sent"),
        (b, paris(11, 7), 2, "sent"),
        (c, None, 0, "failed"),
    ):
        session.add(CrisisCall(crisis_id=crisis.id, practitioner_id=uuid.UUID(gp),
                               practice_id=practice, sent_at=paris(10, 8), mail_status=status,
                               opened_at=opened, slots_opened=n))  # fmt: skip
    slots = {}
    for name, gp, start, created in (
        ("a_tue_1400", a, paris(10, 14), paris(10, 9, 30)),
        ("a_tue_1420", a, paris(10, 14, 20), paris(10, 9, 30)),
        ("a_wed_1400", a, paris(11, 14), paris(10, 9, 30)),
        ("a_wed_1420", a, paris(11, 14, 20), paris(10, 9, 30)),
        ("b_wed_0900", b, paris(11, 9), paris(11, 7)),
        ("b_thu_1000", b, paris(12, 10), paris(11, 7)),
    ):
        slots[name] = await _slot(session, t, gp, start, created, crisis.id)
    await _slot(session, t, b, paris(12, 10, 30), paris(11, 7), crisis.id, status="unavailable")
    await _slot(session, t, a, paris(10, 15), paris(10, 9), None)  # an ordinary slot
    await _unmet(session, tid)
    await session.commit()

    clock.set(paris(10, 10))
    booking = {}
    for name in ("a_tue_1400", "a_tue_1420", "a_wed_1400", "b_wed_0900"):
        r = await book(client, t, slots[name])
        assert r.status_code == 201, r.text
        booking[name] = r.json()["id"]
    clock.set(paris(10, 11))
    r = await client.post(f"/v1/bookings/{booking['a_wed_1400']}/cancel",
                          json={"reason": "erreur"}, headers=t.regulator)  # fmt: skip
    assert r.status_code == 200, r.text
    assert (await book(client, t, slots["a_wed_1400"])).status_code == 201
    clock.set(paris(10, 15))
    for name, outcome in (("a_tue_1400", "honored"), ("a_tue_1420", "no_show")):
        r = await client.post(f"/v1/bookings/{booking[name]}/outcome",
                              json={"outcome": outcome}, headers=t.practice)  # fmt: skip
        assert r.status_code == 200, r.text
    clock.set(paris(14, 12))  # two days after the end
    return Scenario(str(crisis.id), [a, b, c], slots)


async def _unmet(session, territory_id: uuid.UUID) -> None:
    for at, commune, reason, kind in (
        (paris(10, 10), "15014", "no_slot", "declared"),
        (paris(11, 12), "15014", "too_far", "declared"),
        (paris(10, 11), "15100", "no_slot", "declared"),
        (paris(9, 9), "15014", "no_slot", "declared"),
        (paris(12, 19), "15014", "no_slot", "declared"),
        (paris(10, 10, 30), "15014", "no_slot", "empty_search"),
    ):
        session.add(UnmetRequest(territory_id=territory_id, kind=kind, recorded_at=at,
                                 commune_insee=commune, reason=reason,
                                 half_hour=at if kind == "empty_search" else None))  # fmt: skip


async def test_the_report_counts_the_scenario_by_hand(client, session, clock, territory, admin):
    s = await crisis_scenario(client, session, clock, territory, admin)
    r = await client.get(f"/v1/crises/{s.crisis_id}/report", headers=territory.coordinator)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["crisis"]["running"] is False
    assert report["crisis"]["declared_at"] == "2026-03-10T08:00:00+01:00"
    assert (report["first_day"], report["last_day"]) == ("2026-03-10", "2026-03-12")
    days = {d["day"]: d for d in report["days"]}
    # opened by the slot's day: Tue 14:00 + 14:20; Wed 14:00, 14:20, 09:00; Thu 10:00 (the
    # closed Thu 10:30 is no capacity; the ordinary Tue 15:00 is no crisis slot)
    assert [d["slots_opened"] for d in report["days"]] == [2, 3, 1]
    # created: A's four on Tuesday, B's three (the closed one too) on Wednesday
    assert [d["slots_created"] for d in report["days"]] == [4, 3, 0]
    assert [d["pledge"] for d in report["days"]] == [8, 6, 2]
    # Tue: honoured + no-show stand; Wed: A 14:00 (rebooked) and B 09:00 stand, 1 cancelled
    assert [(d["booked"], d["honoured"], d["no_show"], d["cancelled"]) for d in
            report["days"]] == [(2, 1, 1, 0), (2, 0, 0, 1), (0, 0, 0, 0)]  # fmt: skip
    # in 15014 during the crisis: Tue no slot, Wed too far
    assert [d["unmet"] for d in report["days"]] == [1, 1, 0]
    assert days["2026-03-11"]["unmet"] == 1
    assert {k: v for k, v in report["unmet_by_reason"].items() if v} == {
        "no_slot": 1, "too_far": 1}  # fmt: skip
    assert report["unmet_by_commune"] == {"15014": 2}  # not 15100's
    assert report["totals"] == {
        "slots_opened": 6, "slots_created": 7, "pledge": 16, "booked": 4, "honoured": 1,
        "no_show": 1, "cancelled": 1, "unmet": 2, "empty_searches": 1,
        "volunteers_called": 3, "pledges_honoured": 2, "opened_within_2h": 1,
        "opened_within_24h": 2,
    }  # fmt: skip
    calls = report["calls"]
    # called at the same time: by name
    assert [c["practitioner"] for c in calls] == [
        "Dr Jean Bernard", "Dr Jean Carré", "Dr Claire Martin"]  # fmt: skip
    assert [c["minutes_after_call"] for c in calls] == [23 * 60, None, 90]
    assert [c["minutes_after_declaration"] for c in calls] == [23 * 60, None, 90]
    assert [c["mail_status"] for c in calls] == ["sent", "failed", "sent"]
    assert calls[2]["practice"] == "Maison de santé d'Aurillac"
    assert calls[0]["opened_at"] == "2026-03-11T07:00:00+01:00"
    assert [(e["event"], e["at"][:16]) for e in report["timeline"]] == [
        ("started", "2026-03-10T07:00"),
        ("declared", "2026-03-10T08:00"),
        ("called", "2026-03-10T08:00"),
        ("called", "2026-03-10T08:00"),
        ("called", "2026-03-10T08:00"),
        ("capacity_opened", "2026-03-10T09:30"),
        ("capacity_opened", "2026-03-11T07:00"),
        ("ended", "2026-03-12T18:00"),
    ]
    assert report["timeline"][5]["slots"] == 4


async def test_the_indicators_count_the_crisis_by_hand(client, session, clock, territory, admin):
    await crisis_scenario(client, session, clock, territory, admin)
    query = "from=2026-03-09&to=2026-03-16&granularity=week"
    r = await client.get(f"/v1/indicators?{query}", headers=territory.dashboard)
    assert r.status_code == 200, r.text
    [week] = r.json()["periods"]
    assert week["crisis"] == {
        "crises_declared": 1,  # declared Tue 10 March
        "volunteers_called": 3,  # A, B, C, called Tue 08:00
        "pledges_honoured": 2,  # A and B opened capacity; C did not
        "share_honoured": 0.6667,  # 2 / 3
        "opened_within_2h": 1,  # A, 90 min after the declaration
        "share_opened_within_2h": 0.3333,  # 1 / 3
        "opened_within_24h": 2,  # A, and B 23 h after
        "share_opened_within_24h": 0.6667,  # 2 / 3
        "slots_opened": 6,  # the closed slot and the ordinary one are not crisis capacity
        "slots_booked": 4,  # Tue 14:00, Tue 14:20, Wed 14:00 (rebooked), Wed 09:00
    }
    # the week before: nothing
    r = await client.get(
        "/v1/indicators?from=2026-03-02&to=2026-03-09&granularity=week",
        headers=territory.dashboard,
    )
    crisis = r.json()["periods"][0]["crisis"]
    assert crisis["crises_declared"] == 0 and crisis["share_honoured"] is None


async def test_the_indicators_csv_carries_the_crisis_figures(
    client, session, clock, territory, admin
):
    await crisis_scenario(client, session, clock, territory, admin)
    query = "from=2026-03-09&to=2026-03-16&granularity=week"
    r = await client.get(f"/v1/indicators?{query}&dialect=raw",
                         headers={**territory.coordinator, "Accept": "text/csv"})  # fmt: skip
    [row] = list(csv.DictReader(io.StringIO(r.text)))
    assert (row["crisis.volunteers_called"], row["crisis.slots_opened"]) == ("3", "6")
    assert row["crisis.share_opened_within_2h"] == "0.3333"
    excel = await client.get(f"/v1/indicators?{query}",
                             headers={**territory.coordinator, "Accept": "text/csv"})  # fmt: skip
    lines = excel.content.decode("utf-8-sig").splitlines()
    header = lines[0].split(";")
    at = header.index("Crise part des appels ouverts dans les 2 h")
    assert lines[1].split(";")[at] == "0,3333"
    assert "Crise médecins volontaires appelés" in header


async def test_the_report_csv_in_both_dialects(client, session, clock, territory, admin):
    s = await crisis_scenario(client, session, clock, territory, admin)
    path = f"/v1/crises/{s.crisis_id}/report.csv"
    raw = await client.get(f"{path}?dialect=raw", headers=territory.dashboard)
    assert raw.status_code == 200, raw.text
    assert raw.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(raw.text)))
    assert [(r["day"], r["slots_opened"], r["pledge"], r["booked"]) for r in rows] == [
        ("2026-03-10", "2", "8", "2"), ("2026-03-11", "3", "6", "2"),
        ("2026-03-12", "1", "2", "0")]  # fmt: skip
    excel = await client.get(f"{path}?part=calls", headers=territory.coordinator)
    text = excel.content.decode("utf-8-sig")
    assert excel.content.startswith(b"\xef\xbb\xbf")
    lines = text.splitlines()
    assert lines[0].split(";")[:3] == ["Médecin", "Cabinet", "Appelé le"]
    assert lines[2].split(";")[3] == "échec"  # C's mail, in French
    timeline = await client.get(f"{path}?part=timeline", headers=territory.coordinator)
    assert "déclaration" in timeline.content.decode("utf-8-sig")


async def test_a_formula_in_a_name_is_neutralised_in_the_csv(
    client, session, clock, territory, admin
):
    s = await crisis_scenario(client, session, clock, territory, admin)
    r = await client.patch(f"/v1/practices/{territory.practice_id}",
                           json={"name": "=HYPERLINK(1)"}, headers=admin)  # fmt: skip
    assert r.status_code == 200, r.text
    raw = await client.get(f"/v1/crises/{s.crisis_id}/report.csv?part=calls&dialect=raw",
                           headers=territory.coordinator)  # fmt: skip
    cells = [row[1] for row in csv.reader(io.StringIO(raw.text))][1:]
    assert cells and all(c.startswith("'=HYPERLINK") for c in cells), cells


async def test_a_running_crisis_reports_up_to_today(client, session, clock, territory, admin):
    s = await crisis_scenario(client, session, clock, territory, admin)
    crisis = await session.get(Crisis, uuid.UUID(s.crisis_id))
    crisis.ended_at = None
    await session.commit()
    clock.set(paris(13, 9))  # Friday
    r = await client.get(f"/v1/crises/{s.crisis_id}/report", headers=territory.coordinator)
    report = r.json()
    assert report["crisis"]["running"] is True
    assert report["last_day"] == "2026-03-13"
    # Thursday 19:00's request now falls during the crisis
    assert report["totals"]["unmet"] == 3
    assert report["unmet_by_commune"] == {"15014": 3}
    assert not any(e["event"] == "ended" for e in report["timeline"])


async def test_the_list_of_crises_gives_the_summary_figures_and_the_report(
    client, session, clock, territory, admin
):
    s = await crisis_scenario(client, session, clock, territory, admin)
    r = await client.get("/v1/crises", headers=territory.dashboard)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["next_cursor"] is None
    [item] = page["items"]
    report = (await client.get(item["report"], headers=territory.dashboard)).json()
    assert item["id"] == s.crisis_id and item["kind"] == "epidemic"
    assert item["running"] is False and item["started_at"] == "2026-03-10T07:00:00+01:00"
    assert item["report"] == f"/v1/crises/{s.crisis_id}/report"
    assert item["volunteers_called"] == report["totals"]["volunteers_called"]
    assert item["pledges_honoured"] == report["totals"]["pledges_honoured"]
    assert item["slots_opened"] == sum(c["slots_opened"] for c in report["calls"])


async def test_who_may_list_crises_and_read_their_reports(
    client, session, clock, territory, other_territory, admin
):
    s = await crisis_scenario(client, session, clock, territory, admin)
    other = await client.get("/v1/crises", headers=other_territory.coordinator)
    assert other.json()["items"] == []
    mine = f"/v1/crises?territory_id={territory.id}"
    assert_problem(await client.get(mine, headers=other_territory.coordinator), 404)
    for key in (territory.coordinator, territory.dashboard, territory.regulator, admin):
        r = await client.get(mine, headers=key)
        assert [c["id"] for c in r.json()["items"]] == [s.crisis_id], key
    path = f"/v1/crises/{s.crisis_id}/report"
    assert_problem(await client.get(path, headers=other_territory.coordinator), 404)
    assert_problem(await client.get(path, headers=territory.regulator), 403)
    assert_problem(await client.get(path, headers=territory.practice), 403)
    assert (await client.get(path, headers=admin)).status_code == 200
    assert_problem(await client.get(f"/v1/crises/{uuid.uuid4()}/report", headers=admin), 404)
    assert_problem(await client.get(f"{path}.csv?part=nope", headers=admin), 422)
    assert_problem(await client.get("/v1/crises/not-a-uuid/report", headers=admin), 422)
    assert_problem(await client.get("/v1/crises?cursor=nope", headers=admin), 422)
    assert (await client.get("/v1/crisis-reports", headers=admin)).status_code == 404


async def test_a_slot_created_after_the_end_widens_the_days(
    client, session, clock, territory, admin
):
    s = await crisis_scenario(client, session, clock, territory, admin)
    crisis_id = uuid.UUID(s.crisis_id)
    # created on Friday 13 (after the end) for Thursday 12: counted on both days' rows
    await _slot(session, territory, s.gps[1], paris(12, 16), paris(13, 9), crisis_id)
    await session.commit()
    r = await client.get(f"/v1/crises/{s.crisis_id}/report", headers=territory.coordinator)
    report = r.json()
    assert report["last_day"] == "2026-03-13"
    assert [d["slots_created"] for d in report["days"]] == [4, 3, 0, 1]
    assert [d["slots_opened"] for d in report["days"]] == [2, 3, 2, 0]
    assert report["totals"]["slots_created"] == 8
    assert report["days"][3]["pledge"] == 0  # Friday: nobody pledged


async def test_a_crisis_just_declared_without_plan_calls_or_slots(
    client, session, clock, territory
):
    clock.set(paris(20, 9, 15))
    crisis = Crisis(territory_id=uuid.UUID(territory.id), kind="cyber_attack",
                    title="Cyberattaque du centre hospitalier", started_at=paris(19, 22),
                    expected_end_at=paris(27, 20), declared_at=paris(20, 9))  # fmt: skip
    session.add(crisis)
    await session.commit()
    r = await client.get(f"/v1/crises/{crisis.id}/report", headers=territory.coordinator)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["crisis"]["running"] is True and report["crisis"]["communes"] == []
    # from the start's day (the evening before) to today
    assert [d["day"] for d in report["days"]] == ["2026-03-19", "2026-03-20"]
    assert set(report["totals"].values()) == {0}
    assert report["calls"] == []
    assert [e["event"] for e in report["timeline"]] == ["started", "declared"]
    await sign_in(client, territory.coordinator)
    page = await client.get(f"/coordination/crise/{crisis.id}/rapport")
    assert page.status_code == 200
    assert "Aucun médecin appelé." in page.text and "Tout le territoire" in page.text
    assert "En cours" in page.text
