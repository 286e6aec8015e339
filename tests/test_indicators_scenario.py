"""Issue 22's hand-counted scenario, driven through the API: 4 GPs (and a fifth one deleted),
10 one-off slots, bookings rebooked, cancelled, held and let go, surnuméraires, outcomes, and an
MT queue of 5 patients. Every figure it touches is counted by hand below, with the counting in
comments; the API must give the same."""

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.scheduling import booking_outcomes
from tests.conftest import practitioner_body
from tests.test_bookings import PATIENT, book, idem
from tests.test_mt_requests import patient, seventy_plus
from tests.test_slot_search import add_slot, at

PARIS = ZoneInfo("Europe/Paris")


async def _gp(client, t, **over) -> str:
    r = await client.post(
        "/v1/practitioners", json=practitioner_body(t.practice_id, **over), headers=t.coordinator
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def _ok(response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


async def _register(client, t, **over) -> str:
    body = {"patient": patient(), "ald": False, "precarity": False, "source": "hotline", **over}
    headers = {**t.coordinator, "Idempotency-Key": str(uuid.uuid4())}
    return (await _ok(await client.post("/v1/mt-requests", json=body, headers=headers), 201))["id"]


async def test_hand_counted_scenario(client, territory, monkeypatch):
    t = territory
    post = client.post
    g1 = t.practitioner_id
    await _ok(
        await client.patch(
            f"/v1/practitioners/{g1}",
            # Surnuméraires round the clock: the scenario books them 8 to 10 h from now.
            json={
                "accepts_overbooking": True,
                "overbooking_daily_cap": 3,
                "mt_capacity": 2,
                "overbooking_start_time": "00:00",
                "overbooking_end_time": "00:00",
            },
            headers=t.coordinator,
        )
    )
    g2 = await _gp(client, t, mt_capacity=1)
    g3 = await _gp(client, t)
    g4 = await _gp(client, t)
    g5 = await _gp(client, t, mt_capacity=4)  # deleted below

    # --- SNP: 10 one-off slots of 30 minutes, all within 48 h -----------------------------
    s1 = await add_slot(client, t, g1, 2)
    s2 = await add_slot(client, t, g1, 3)
    s3 = await add_slot(client, t, g1, 4)
    s4 = await add_slot(client, t, g2, 2)
    s5 = await add_slot(client, t, g2, 3, modality="visite")
    s6 = await add_slot(client, t, g2, 30, visibility="public")
    await add_slot(client, t, g3, 5)  # s7: stays free
    await add_slot(client, t, g3, 11)  # s8: inside the absence below
    await add_slot(client, t, g4, 5, visibility="cpts")
    await add_slot(client, t, g4, 6, visibility="cpts")
    await _ok(
        await post(
            f"/v1/practitioners/{g3}/unavailabilities",
            json={"start": at(11).isoformat(), "end": at(12).isoformat(), "reason": "congé"},
            headers=t.practice,
        ),
        201,
    )

    def cancel(booking_id: str):
        return post(f"/v1/bookings/{booking_id}/cancel", json={"reason": "x"}, headers=t.regulator)

    first = await _ok(await book(client, t, s1), 201)
    await _ok(await cancel(first["id"]))
    await _ok(await book(client, t, s1), 201)  # s1 booked again: taken once
    honored = await _ok(await book(client, t, s2), 201)
    no_show = await _ok(await book(client, t, s3), 201)
    hold = await _ok(await book(client, t, s4, hold=True), 201)
    await _ok(await cancel(hold["id"]))  # a hold let go: neither booking nor cancellation
    await _ok(await book(client, t, s5), 201)
    await _ok(await book(client, t, s6), 201)
    extras = []
    for hours in (8, 9, 10):
        body = {"practitioner_id": g1, "start": at(hours).isoformat(), "patient": PATIENT}
        r = await post("/v1/bookings/overbook", json=body, headers={**t.regulator, **idem()})
        extras.append(await _ok(r, 201))
    await _ok(await cancel(extras[2]["id"]))  # one surnuméraire cancelled

    # The consultations of s2 and s3 have taken place: the practice records their outcome.
    later = datetime.now(PARIS) + timedelta(hours=24)
    monkeypatch.setattr(booking_outcomes, "now_utc", lambda: later)
    for booking, outcome in ((honored, "honored"), (no_show, "no_show")):
        r = await post(
            f"/v1/bookings/{booking['id']}/outcome", json={"outcome": outcome}, headers=t.practice
        )
        await _ok(r)
    monkeypatch.undo()

    # --- MT: 5 patients with 3, 2, 1, 0 and 0 criteria ----------------------------------------
    p3 = await _register(
        client, t, ald=True, precarity=True, patient=patient(birth_date=seventy_plus())
    )
    p2 = await _register(client, t, ald=True, precarity=True)
    p1 = await _register(client, t, ald=True)
    await _register(client, t)
    await _register(client, t)

    async def propose(request_id: str, gp: str) -> None:
        r = await post(
            f"/v1/mt-requests/{request_id}/proposals",
            json={"practitioner_id": gp},
            headers=t.coordinator,
        )
        await _ok(r)

    async def answer(request_id: str, verb: str) -> None:
        body = {} if verb == "accept" else {"reason": "x"}
        await _ok(await post(f"/v1/mt-requests/{request_id}/{verb}", json=body,
                             headers=t.coordinator))  # fmt: skip

    await propose(p3, g1)
    await answer(p3, "decline")  # the patient declines G1...
    await propose(p3, g2)
    await answer(p3, "accept")  # ...and chooses G2
    await propose(p2, g1)
    await answer(p2, "accept")
    await propose(p1, g1)
    await answer(p1, "accept")
    await answer(p1, "withdraw")  # attached, then withdrawn: G1's place is free again
    # G2's capacity lowered below its one patient; G5 leaves the CPTS.
    await _ok(
        await client.put(
            f"/v1/practitioners/{g2}/mt-capacity", json={"mt_capacity": 0}, headers=t.coordinator
        )
    )
    await _ok(await client.delete(f"/v1/practitioners/{g5}", headers=t.coordinator), 204)

    # --- The figures ----------------------------------------------------------------------------
    today = datetime.now(PARIS).date()
    r = await client.get(
        "/v1/indicators",
        params={
            "from": today.isoformat(),
            "to": (today + timedelta(days=3)).isoformat(),
            "granularity": "year",
        },
        headers=t.coordinator,
    )
    periods = (await _ok(r))["periods"]
    # One period, or two if the three days cross 1 January: add them up.

    def total(section: str, name: str) -> Any:
        return sum(p[section][name] for p in periods)

    snp: dict[str, Any] = {
        name: total("snp", name)
        for name in (
            "slots_offered", "slots_offered_sas", "slots_offered_cpts", "hours_offered",
            "slots_taken", "slots_booked_by_sas", "booked_within_24h", "booked_within_48h",
            "overbooked", "cancellations", "honored", "no_show",
        )
    }  # fmt: skip
    assert snp == {
        # s1..s8 are visible to the SAS (s6 public), s8 then withdrawn by the absence: 7;
        # the two cpts slots of G4: 2; together 9.
        "slots_offered": 9,
        "slots_offered_sas": 7,
        "slots_offered_cpts": 2,
        # 9 slots of 30 minutes.
        "hours_offered": 4.5,
        # s1 (booked, cancelled, booked again: once), s2 (honored), s3 (no-show), s5, s6.
        # s4 was only held, s7 stays free.
        "slots_taken": 5,
        # The bookings that stand at the end: s1's second, s2, s3, s5, s6.
        "slots_booked_by_sas": 5,
        # Seen or expected within 24 h of the booking: s1's second, s2, s5 and the two standing
        # surnuméraires (s3 is a no-show; s6 starts 30 h after it was booked).
        "booked_within_24h": 5,
        # Within 48 h: the same and s6.
        "booked_within_48h": 6,
        # 3 surnuméraires, one cancelled.
        "overbooked": 2,
        # s1's first booking and the cancelled surnuméraire (the hold let go is not one).
        "cancellations": 2,
        "honored": 1,
        "no_show": 1,
    }
    for p in periods:  # the fill rate of each period is its slots taken ÷ offered
        offered, taken = p["snp"]["slots_offered"], p["snp"]["slots_taken"]
        assert p["snp"]["fill_rate"] == (round(taken / offered, 4) if offered else None)
    if len(periods) == 1:
        s = periods[0]["snp"]
        # 5 of 9 slots taken.
        assert s["fill_rate"] == 0.5556
        # G1, G2, G3 (s7) and G4 offer; 4.5 h over 3 days is 4.5 / 4 / (3/7) h a GP a week.
        assert s["practitioners_offering"] == 4
        assert s["hours_per_gp_per_week"] == round(4.5 / 4 / (3 / 7), 2)
        # Standing bookings and surnuméraires: 7, of which s5 at home.
        assert s["modality_share"] == {
            "cabinet": round(6 / 7, 4),
            "visite": round(1 / 7, 4),
            "teleconsultation": 0.0,
        }
        assert s["no_show_rate"] == 0.5

    mt = {name: total("mt", name) for name in ("registered", "attached")}
    # 5 registered; P3, P2 and P1 attached in the period (P1 withdrawn later still was).
    assert mt == {"registered": 5, "attached": 3}
    end = periods[-1]["mt"]
    # The two patients without criteria still wait; nobody in any other priority, nothing
    # negative.
    assert end["waiting_at_end"] == 2
    assert end["waiting_at_end_by_priority"] == {"0": 2, "1": 0, "2": 0, "3": 0}
    # G1: 2 places − P2 = 1; G2: capacity 0 with P3 = 0 (not −1); G3, G4: 0; G5 deleted.
    assert end["remaining_capacity_at_end"] == 1
    # The two still waiting registered moments ago.
    assert end["still_waiting_days_oldest"] == 0.0
    if len(periods) == 1:
        assert end["fragile_share_of_attached"] == 1.0  # P3, P2, P1 all fragile
        # Criteria at registration: ALD P3, P2, P1; 70+ P3; precarity P3, P2.
        assert end["by_criterion"] == {
            "ald": {"registered": 3, "attached": 3, "waiting_at_end": 0},
            "aged_70": {"registered": 1, "attached": 1, "waiting_at_end": 0},
            "precarity": {"registered": 2, "attached": 2, "waiting_at_end": 0},
        }
