"""No double booking, whatever the concurrency: committed transactions, many at once."""

import asyncio
import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import make_sessionmaker
from app.directory import key_service, regulator_service
from app.directory import schemas as dir_schemas
from app.errors import AppError
from app.main import create_app
from app.scheduling import booking_creation, booking_schemas, one_off_slots, overbooking
from app.scheduling import schemas as sched_schemas
from app.security import Caller
from tests.conftest import create_gp

PATIENT = {
    "family_name": "Roche",
    "given_name": "Paul",
    "birth_date": "1990-01-01",
    "phone": "0612345678",
}


class Live:
    practitioner_id: uuid.UUID
    slot_ids: list[uuid.UUID]
    regulator: Caller
    headers: dict[str, str]


@pytest.fixture
async def live(engine: AsyncEngine) -> Live:
    """Committed data: a territory, a GP with 20 slots, a SAS and its key."""
    admin = Caller(key_id=uuid.uuid4(), role="admin")
    out = Live()
    async with make_sessionmaker(engine)() as s:
        gp = await create_gp(
            s,
            "CPTS charge",
            family_name="Blanc",
            accepts_overbooking=True,
            overbooking_daily_cap=3,
        )
        reg = await regulator_service.create_regulator(
            s, admin, dir_schemas.RegulatorIn(name="SAS charge", department="15")
        )
        await regulator_service.link_regulator(s, admin, gp.territory_id, reg.id)
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
        out.slot_ids = []
        for i in range(20):
            slot, _ = await one_off_slots.create_one_off_slot(
                s,
                admin,
                gp.id,
                sched_schemas.OneOffSlotIn(
                    start=start + timedelta(minutes=15 * i),
                    end=start + timedelta(minutes=15 * (i + 1)),
                    modality="cabinet",
                    visibility="sas",
                ),
            )
            out.slot_ids.append(slot.id)
        _, secret = await key_service.create_key(
            s, None, dir_schemas.KeyIn(role="regulator", name="r", regulator_id=reg.id)
        )
        await s.commit()
        out.practitioner_id = gp.id
        out.regulator = Caller(
            key_id=uuid.uuid4(),
            role="regulator",
            regulator_id=reg.id,
            territory_ids=frozenset([gp.territory_id]),
        )
        out.headers = {"Authorization": f"Bearer {secret}"}
    return out


async def _occupancy(engine: AsyncEngine, slot_ids) -> tuple[int, int]:
    async with engine.connect() as conn:
        active = await conn.scalar(
            text(
                "SELECT count(*) FROM booking WHERE slot_id = ANY(:ids) "
                "AND status IN ('held','booked','honored','no_show')"
            ),
            {"ids": slot_ids},
        )
        doubled = await conn.scalar(
            text(
                "SELECT count(*) FROM (SELECT slot_id FROM booking WHERE slot_id = ANY(:ids) "
                "AND status IN ('held','booked') GROUP BY slot_id HAVING count(*) > 1) d"
            ),
            {"ids": slot_ids},
        )
    return active, doubled


async def test_200_concurrent_http_bookings_over_20_slots(engine, live):
    app = create_app(
        Settings(scheduler_enabled=False, log_level="WARNING", rate_limit_per_minute=0)
    )
    app.state.sessionmaker = make_sessionmaker(engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers=live.headers
    ) as client:

        async def attempt(i: int) -> httpx.Response:
            return await client.post(
                "/v1/bookings",
                json={"slot_id": str(live.slot_ids[i % 20]), "patient": PATIENT},
                headers={"Idempotency-Key": f"attempt-{i}-{uuid.uuid4()}"},
            )

        responses = await asyncio.gather(*(attempt(i) for i in range(200)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 20
    assert statuses.count(409) == 180
    assert all(
        r.json()["type"].endswith("/slot-unavailable") for r in responses if r.status_code == 409
    )
    assert await _occupancy(engine, live.slot_ids) == (20, 0)


async def test_200_concurrent_bookings_on_separate_connections(engine, live):
    factory = make_sessionmaker(engine)

    async def attempt(i: int) -> str:
        async with factory() as session:
            try:
                await booking_creation.book(
                    session,
                    live.regulator,
                    booking_schemas.BookingIn(
                        slot_id=live.slot_ids[i % 20], patient=booking_schemas.PatientIn(**PATIENT)
                    ),
                )
                await session.commit()
                return "booked"
            except AppError as exc:
                return str(exc.status)

    results = await asyncio.gather(*(attempt(i) for i in range(200)))
    assert results.count("booked") == 20 and results.count("409") == 180
    assert await _occupancy(engine, live.slot_ids) == (20, 0)


async def test_same_idempotency_key_fired_10_times_at_once_books_once(engine, live):
    app = create_app(
        Settings(scheduler_enabled=False, log_level="WARNING", rate_limit_per_minute=0)
    )
    app.state.sessionmaker = make_sessionmaker(engine)
    transport = httpx.ASGITransport(app=app)
    body = {"slot_id": str(live.slot_ids[0]), "patient": PATIENT}
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://t",
        headers={**live.headers, "Idempotency-Key": "same"},
    ) as c:
        responses = await asyncio.gather(*(c.post("/v1/bookings", json=body) for _ in range(10)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await _occupancy(engine, live.slot_ids[:1]) == (1, 0)


async def test_overbooking_cap_holds_under_concurrency(engine, live):
    factory = make_sessionmaker(engine)
    # Tomorrow 10:00 local: within the 48-hour SNP window and the surnuméraire hours.
    paris = ZoneInfo("Europe/Paris")
    start = datetime.combine(datetime.now(paris).date() + timedelta(days=1), time(10), paris)

    async def attempt(i: int) -> str:
        async with factory() as session:
            try:
                await overbooking.overbook(
                    session,
                    live.regulator,
                    booking_schemas.OverbookIn(
                        practitioner_id=live.practitioner_id,
                        start=start + timedelta(minutes=i),
                        patient=booking_schemas.PatientIn(**PATIENT),
                    ),
                )
                await session.commit()
                return "booked"
            except AppError as exc:
                return str(exc.status)

    results = await asyncio.gather(*(attempt(i) for i in range(20)))
    assert results.count("booked") == 3 and results.count("409") == 17
    async with factory() as session:
        from app.scheduling.booking_models import Booking

        count = await session.scalar(
            select(func.count())
            .select_from(Booking)
            .where(Booking.practitioner_id == live.practitioner_id, Booking.overbooked.is_(True))
        )
    assert count == 3
