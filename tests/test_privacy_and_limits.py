"""Patient data: access log, retention purge that leaves indicators unchanged; rate limits."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update

from app.activity.audit import PatientAccess
from app.config import Settings, get_settings
from app.main import create_app
from app.medecin_traitant.models import MtRequest
from app.retention import purge_expired
from app.scheduling.booking_models import Booking
from tests.conftest import assert_problem
from tests.test_bookings import book
from tests.test_mt_requests import register
from tests.test_slot_search import add_slot


async def test_reading_a_booking_is_logged_with_who_and_which(client, territory, session):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    booking = (await book(client, territory, slot_id)).json()
    await client.get(f"/v1/bookings/{booking['id']}", headers=territory.practice)
    await client.get("/v1/bookings", headers=territory.coordinator)
    rows = (
        await session.scalars(
            select(PatientAccess)
            .where(PatientAccess.record_id == uuid.UUID(booking["id"]))
            .order_by(PatientAccess.id)
        )
    ).all()
    assert [(r.role, r.action) for r in rows] == [("practice", "read"), ("coordinator", "list")]
    audit = (
        await client.get(f"/v1/audit?record_id={booking['id']}", headers=territory.coordinator)
    ).json()["items"]
    assert [a["action"] for a in audit] == ["list", "read"]  # newest first


async def test_mt_export_is_logged(client, territory, session):
    rid = (await register(client, territory)).json()["id"]
    await client.get("/v1/mt-requests", headers={**territory.coordinator, "Accept": "text/csv"})
    actions = (
        await session.scalars(
            select(PatientAccess.action).where(PatientAccess.record_id == uuid.UUID(rid))
        )
    ).all()
    assert actions == ["export"]


async def test_audit_is_for_coordinators_of_the_territory(client, territory, other_territory):
    assert_problem(await client.get("/v1/audit", headers=territory.practice), 403)
    r = await client.get("/v1/audit", headers=other_territory.coordinator)
    assert r.json()["items"] == []


async def test_retention_erases_patient_data_and_keeps_indicators(client, territory, session):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    booking = (await book(client, territory, slot_id)).json()
    rid = (await register(client, territory)).json()["id"]
    params = {"granularity": "year"}
    before = (
        await client.get("/v1/indicators", params=params, headers=territory.coordinator)
    ).json()["periods"]
    long_ago = datetime.now(UTC) - timedelta(days=800)
    await session.execute(
        update(Booking)
        .where(Booking.id == uuid.UUID(booking["id"]))
        .values(status="honored", outcome_at=long_ago)
    )
    await session.execute(
        update(MtRequest)
        .where(MtRequest.id == uuid.UUID(rid))
        .values(status="withdrawn", withdrawn_at=long_ago, withdraw_reason="x")
    )
    await session.commit()
    result = await purge_expired(session)
    await session.commit()
    assert result == {"bookings_erased": 1, "mt_requests_erased": 1}
    row = await session.get(Booking, uuid.UUID(booking["id"]))
    await session.refresh(row)
    assert row.patient_family_name is None and row.patient_phone is None
    shown = (
        await client.get(f"/v1/bookings/{booking['id']}", headers=territory.coordinator)
    ).json()
    assert shown["patient"] is None and shown["status"] == "honored"
    after = (
        await client.get("/v1/indicators", params=params, headers=territory.coordinator)
    ).json()["periods"]
    assert after == before
    assert await purge_expired(session) == {"bookings_erased": 0, "mt_requests_erased": 0}


async def test_retention_counts_back_from_the_service_clock(client, territory, session, clock):
    # The database may hold other tests' committed bookings (the concurrency tests commit), so
    # this one looks at its own booking, not at the purge's counts.
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    booking = (await book(client, territory, slot_id)).json()
    booking_id = uuid.UUID(booking["id"])
    closed = datetime(2030, 1, 10, 9, 30, tzinfo=UTC)
    await session.execute(
        update(Booking).where(Booking.id == booking_id).values(status="honored", outcome_at=closed)
    )

    async def erased() -> bool:
        family_name = await session.scalar(
            select(Booking.patient_family_name).where(Booking.id == booking_id)
        )
        return family_name is None

    kept = timedelta(days=get_settings().booking_retention_days)
    clock.set(closed + kept - timedelta(minutes=1))
    await purge_expired(session)
    assert not await erased()
    clock.set(closed + kept + timedelta(minutes=1))
    assert (await purge_expired(session))["bookings_erased"] >= 1
    assert await erased()
    # An explicit `now` wins over the clock.
    await session.execute(
        update(Booking).where(Booking.id == booking_id).values(patient_family_name="Durand")
    )
    await purge_expired(session, now=closed)
    assert not await erased()


async def test_open_bookings_are_not_erased(client, territory, session):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    await book(client, territory, slot_id)
    assert (await purge_expired(session))["bookings_erased"] == 0


async def test_rate_limit_per_key_is_a_429_with_retry_after(settings, sessionmaker, territory):
    app = create_app(Settings(**{**settings.model_dump(), "rate_limit_per_minute": 60}))
    app.state.sessionmaker = sessionmaker
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        statuses = [
            (await c.get("/v1/territories", headers=territory.coordinator)).status_code
            for _ in range(12)
        ]
        assert statuses[:10] == [200] * 10 and statuses[10] == 429
        r = await c.get("/v1/territories", headers=territory.coordinator)
        body = assert_problem(r, 429, "/too-many-requests")
        assert int(r.headers["retry-after"]) >= 1 and "retry" in body["detail"]
        # Another key has its own budget.
        assert (await c.get("/v1/territories", headers=territory.dashboard)).status_code == 200


async def test_cors_is_off_by_default(client):
    r = await client.options(
        "/v1/slots",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in r.headers
