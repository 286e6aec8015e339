"""Each figure is defined by end state (docs/indicators.md): a slot counts once, in its period,
at its final state; a booking once, by its final status; an MT patient in the priority met at
registration. Each test pins one of the wrong figures of issue 22 with the events the services
write (the log is the only input of the indicators)."""

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert

from app.activity.models import ActivityEvent
from app.api.indicators import current_time

MONTH = {"from": "2027-03-01", "to": "2027-04-01", "granularity": "month"}


class Log:
    """Events of one territory, as the services write them, inserted in one go."""

    def __init__(self, territory_id: str) -> None:
        self.territory_id = uuid.UUID(territory_id)
        self.events: list[dict[str, Any]] = []

    def add(self, when: str, type_: str, practitioner=None, subject=None, **data: Any) -> None:
        self.events.append(
            {
                "at": datetime.fromisoformat(when),
                "type": type_,
                "territory_id": self.territory_id,
                "practitioner_id": practitioner,
                "subject_id": subject,
                "data": data,
            }
        )

    def offer(self, when: str, gp, days: dict[str, int], visibility="sas", type_="slots.offered"):
        self.add(
            when,
            type_,
            gp,
            modality="cabinet",
            visibility=visibility,
            days={d: {"slots": n, "minutes": 20 * n} for d, n in days.items()},
        )

    def booking(self, when: str, type_: str, gp, booking, start: str, **data: Any) -> None:
        lead = (datetime.fromisoformat(start) - datetime.fromisoformat(when)).total_seconds()
        extra = {"lead_minutes": int(lead // 60)} if type_.endswith("booked") else {}
        self.add(
            when,
            type_,
            gp,
            booking,
            modality="cabinet",
            start=start,
            overbooked=type_ == "booking.overbooked",
            **extra,
            **data,
        )

    def mt(self, when: str, type_: str, request, gp=None, *, priority: int = 0, **data: Any):
        self.add(when, type_, gp, request, priority=priority, **data)

    async def save(self, session) -> None:
        await session.execute(insert(ActivityEvent), self.events)
        await session.commit()


async def month(client, t, **params) -> dict[str, Any]:
    r = await client.get("/v1/indicators", params={**MONTH, **params}, headers=t.coordinator)
    assert r.status_code == 200, r.text
    (period,) = r.json()["periods"]
    return period


GP = uuid.uuid4()
START = "2027-03-10T10:00:00+01:00"


async def test_a_slot_booked_cancelled_and_rebooked_fills_once(client, territory, session):
    log = Log(territory.id)
    log.offer("2027-03-01T08:00:00+01:00", GP, {"2027-03-10": 1})
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    log.booking("2027-03-08T09:00:00+01:00", "booking.booked", GP, first, START)
    log.booking("2027-03-08T09:10:00+01:00", "booking.cancelled", GP, first, START, was="booked")
    log.booking("2027-03-08T09:20:00+01:00", "booking.booked", GP, second, START)
    log.booking("2027-03-08T09:30:00+01:00", "booking.cancelled", GP, second, START, was="booked")
    log.booking("2027-03-08T09:40:00+01:00", "booking.booked", GP, third, START)
    await log.save(session)
    snp = (await month(client, territory))["snp"]
    # One slot offered, one slot taken (by the third booking): 100 %, not 300 %.
    assert (snp["slots_offered"], snp["slots_taken"], snp["fill_rate"]) == (1, 1, 1.0)


async def test_sas_bookings_count_each_booking_once_by_its_final_status(client, territory, session):
    log = Log(territory.id)
    log.offer("2027-03-01T08:00:00+01:00", GP, {"2027-03-10": 2})
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    log.booking("2027-03-08T09:00:00+01:00", "booking.booked", GP, a, START)
    log.booking("2027-03-08T09:10:00+01:00", "booking.cancelled", GP, a, START, was="booked")
    log.booking("2027-03-08T09:20:00+01:00", "booking.booked", GP, b, START)
    # A hold confirmed: `booking.held` then `booking.booked` of the same booking.
    log.booking("2027-03-08T10:00:00+01:00", "booking.held", GP, c, "2027-03-10T11:00:00+01:00")
    log.booking("2027-03-08T10:02:00+01:00", "booking.booked", GP, c, "2027-03-10T11:00:00+01:00")
    await log.save(session)
    snp = (await month(client, territory))["snp"]
    # b and c still hold their slot; a counts only as a cancellation.
    assert (snp["slots_booked_by_sas"], snp["cancellations"]) == (2, 1)


async def test_appointments_within_48h_are_standing_bookings_and_surnumeraires(
    client, territory, session
):
    log = Log(territory.id)
    log.offer("2027-03-01T08:00:00+01:00", GP, {"2027-03-10": 4})
    kept, cancelled, no_show, later = (uuid.uuid4() for _ in range(4))
    extra, extra_cancelled = uuid.uuid4(), uuid.uuid4()
    made = "2027-03-09T12:00:00+01:00"  # 22 h before START
    log.booking(made, "booking.booked", GP, kept, START)
    log.booking(made, "booking.booked", GP, cancelled, START)
    log.booking(
        "2027-03-09T13:00:00+01:00", "booking.cancelled", GP, cancelled, START, was="booked"
    )
    log.booking(made, "booking.booked", GP, no_show, START)
    log.booking("2027-03-10T11:00:00+01:00", "booking.no_show", GP, no_show, START)
    # Made on 6 March for the 10th: more than 48 h ahead.
    log.booking("2027-03-06T08:00:00+01:00", "booking.booked", GP, later, START)
    log.booking(made, "booking.overbooked", GP, extra, "2027-03-10T18:00:00+01:00")
    log.booking(made, "booking.overbooked", GP, extra_cancelled, "2027-03-10T18:30:00+01:00")
    log.booking(
        "2027-03-09T14:00:00+01:00",
        "booking.cancelled",
        GP,
        extra_cancelled,
        "2027-03-10T18:30:00+01:00",
        was="booked",
    )
    await log.save(session)
    snp = (await month(client, territory))["snp"]
    # kept and the standing surnuméraire: the patients seen or expected within 48 h.
    assert snp["booked_within_48h"] == 2
    # The surnuméraire starts 30 h after it was made: within 48 h, not within 24 h.
    assert snp["booked_within_24h"] == 1
    # Surnuméraires by end state: the cancelled one does not count.
    assert snp["overbooked"] == 1


async def test_sas_offer_and_cpts_offer_are_reported_apart(client, territory, session):
    log = Log(territory.id)
    log.offer("2027-03-01T08:00:00+01:00", GP, {"2027-03-10": 5})
    log.offer("2027-03-01T08:00:00+01:00", GP, {"2027-03-10": 2}, visibility="public")
    log.offer("2027-03-01T08:00:00+01:00", GP, {"2027-03-11": 2}, visibility="cpts")
    log.offer(
        "2027-03-05T08:00:00+01:00", GP, {"2027-03-10": 1}, type_="slots.withdrawn"
    )  # inside an absence
    await log.save(session)
    snp = (await month(client, territory))["snp"]
    assert (snp["slots_offered_sas"], snp["slots_offered_cpts"], snp["slots_offered"]) == (6, 2, 8)


async def test_remaining_mt_places_count_active_gps_and_never_below_zero(
    client, territory, session
):
    log = Log(territory.id)
    a, b, deleted = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    patient = uuid.uuid4()
    log.add("2027-01-05T09:00:00+01:00", "mt.capacity_set", a, capacity=5)
    log.add("2027-01-05T09:00:00+01:00", "mt.capacity_set", b, capacity=1)
    log.add("2027-01-05T09:00:00+01:00", "mt.capacity_set", deleted, capacity=3)
    log.mt("2027-02-01T09:00:00+01:00", "mt.registered", patient)
    log.mt("2027-02-10T09:00:00+01:00", "mt.attached", patient, b, waiting_days=9.0)
    # B's capacity lowered below its one patient: 0 places, not -1 against the others.
    log.add("2027-03-02T09:00:00+01:00", "mt.capacity_set", b, capacity=0)
    log.add("2027-03-03T09:00:00+01:00", "practitioner.deleted", deleted)
    await log.save(session)
    mt = (await month(client, territory))["mt"]
    assert mt["remaining_capacity_at_end"] == 5


async def test_queue_by_priority_uses_the_priority_met_at_registration(client, territory, session):
    log = Log(territory.id)
    gp = uuid.uuid4()
    turning_70, waiting = uuid.uuid4(), uuid.uuid4()
    log.add("2027-01-05T09:00:00+01:00", "mt.capacity_set", gp, capacity=5)
    # Registered at 69 (priority 0), attached after turning 70 (the event says priority 1).
    log.mt("2027-01-10T09:00:00+01:00", "mt.registered", turning_70, priority=0)
    log.mt("2027-01-11T09:00:00+01:00", "mt.registered", waiting, priority=0)
    log.mt("2027-03-05T09:00:00+01:00", "mt.attached", turning_70, gp, priority=1, aged_70=True)
    await log.save(session)
    mt = (await month(client, territory))["mt"]
    assert mt["waiting_at_end_by_priority"] == {"0": 1, "1": 0, "2": 0, "3": 0}
    assert mt["waiting_at_end"] == 1


async def test_attached_then_withdrawn_patient_frees_the_gps_place(client, territory, session):
    log = Log(territory.id)
    gp, patient = uuid.uuid4(), uuid.uuid4()
    log.add("2027-01-05T09:00:00+01:00", "mt.capacity_set", gp, capacity=2)
    log.mt("2027-01-10T09:00:00+01:00", "mt.registered", patient)
    log.mt("2027-01-20T09:00:00+01:00", "mt.attached", patient, gp, waiting_days=10.0)
    # The service writes the withdrawal after clearing the GP: no practitioner on the event.
    log.mt("2027-03-05T09:00:00+01:00", "mt.withdrawn", patient, was="attached")
    await log.save(session)
    mt = (await month(client, territory))["mt"]
    assert mt["remaining_capacity_at_end"] == 2


async def test_fill_rate_never_exceeds_one_when_a_booked_slot_is_withdrawn(
    client, territory, session
):
    log = Log(territory.id)
    log.offer("2027-03-01T08:00:00+01:00", GP, {"2027-03-10": 1})
    booking = uuid.uuid4()
    log.booking("2027-03-08T09:00:00+01:00", "booking.held", GP, booking, START)
    # An absence withdraws the held slot; the hold is then confirmed.
    log.offer("2027-03-08T09:01:00+01:00", GP, {"2027-03-10": 1}, type_="slots.withdrawn")
    log.booking("2027-03-08T09:02:00+01:00", "booking.booked", GP, booking, START)
    await log.save(session)
    snp = (await month(client, territory))["snp"]
    assert snp["slots_offered"] == 0 and snp["fill_rate"] is None


async def test_waiting_times_of_patients_still_waiting_at_the_end(client, territory, session):
    app = client._transport.app
    app.dependency_overrides[current_time] = lambda: datetime(2027, 6, 1, tzinfo=UTC)
    log = Log(territory.id)
    for day in ("01", "11", "21"):
        log.mt(f"2027-02-{day}T00:00:00+01:00", "mt.registered", uuid.uuid4())
    await log.save(session)
    r = await client.get(
        "/v1/indicators",
        params={"from": "2027-02-01", "to": "2027-03-01"},
        headers=territory.coordinator,
    )
    (february,) = r.json()["periods"]
    mt = february["mt"]
    # On 1 March they have waited 28, 18 and 8 days; p90 interpolates 18 + 0.8 × 10.
    assert (mt["still_waiting_days_median"], mt["still_waiting_days_p90"]) == (18.0, 26.0)
    assert mt["still_waiting_days_oldest"] == 28.0
