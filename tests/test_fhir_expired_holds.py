"""A hold that expired never became an appointment: read as FHIR, it is a `pending` Appointment
that ended without taking place, i.e. `cancelled` (with the reason), whether the expiry job has
recorded it (`expired`) or not yet (a lapsed `held`). It never breaks the listing."""

from __future__ import annotations

from fhir.resources.R4B import get_fhir_model_class

from app.scheduling.booking_outcomes import expire_holds
from tests.test_bookings import _expire, book
from tests.test_slot_search import add_slot

Appointment = get_fhir_model_class("Appointment")


async def _expired_hold(client, territory, session, *, job: bool, hours: int = 3) -> str:
    slot_id = await add_slot(client, territory, territory.practitioner_id, hours)
    held = (await book(client, territory, slot_id, hold=True)).json()
    await _expire(session, held["id"])
    if job:
        assert (await expire_holds(session))["holds_expired"] >= 1
        await session.commit()
    return held["id"]


async def _statuses(client, territory, query: str = "") -> dict[str, str]:
    r = await client.get(f"/fhir/Appointment{query}", headers=territory.regulator)
    assert r.status_code == 200, r.text
    return {e["resource"]["id"]: e["resource"]["status"] for e in r.json().get("entry", [])}


async def test_an_expired_hold_is_listed_as_a_cancelled_appointment(client, territory, session):
    hold_id = await _expired_hold(client, territory, session, job=True)
    slot_id = await add_slot(client, territory, territory.practitioner_id, 5)
    booked = (await book(client, territory, slot_id)).json()
    assert await _statuses(client, territory) == {hold_id: "cancelled", booked["id"]: "booked"}


async def test_an_expired_hold_reads_as_a_valid_cancelled_appointment(client, territory, session):
    hold_id = await _expired_hold(client, territory, session, job=True)
    r = await client.get(f"/fhir/Appointment/{hold_id}", headers=territory.regulator)
    assert r.status_code == 200, r.text
    appointment = r.json()
    Appointment.model_validate(appointment)
    assert appointment["status"] == "cancelled"
    assert appointment["cancelationReason"] == {"text": "The hold expired before it was confirmed"}


async def test_a_lapsed_hold_the_job_has_not_seen_reads_as_cancelled(client, territory, session):
    hold_id = await _expired_hold(client, territory, session, job=False)
    r = await client.get(f"/fhir/Appointment/{hold_id}", headers=territory.regulator)
    assert r.json()["status"] == "cancelled"


async def test_a_live_hold_reads_as_pending(client, territory):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    held = (await book(client, territory, slot_id, hold=True)).json()
    assert await _statuses(client, territory) == {held["id"]: "pending"}


async def test_status_search_sorts_expired_holds_with_the_cancelled(client, territory, session):
    recorded = await _expired_hold(client, territory, session, job=True)
    lapsed = await _expired_hold(client, territory, session, job=False, hours=5)
    slot_id = await add_slot(client, territory, territory.practitioner_id, 7)
    live = (await book(client, territory, slot_id, hold=True)).json()["id"]
    assert set(await _statuses(client, territory, "?status=cancelled")) == {recorded, lapsed}
    assert set(await _statuses(client, territory, "?status=pending")) == {live}
    both = await _statuses(client, territory, "?status=pending,cancelled")
    assert set(both) == {recorded, lapsed, live}
