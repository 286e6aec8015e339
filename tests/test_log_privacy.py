"""No patient data in the logs, even when a statement carrying it fails in the database."""

import logging

import httpx
import pytest
from fastapi import Depends
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import get_session
from app.db import make_engine
from app.main import create_app
from tests.test_bookings import idem
from tests.test_slot_search import add_slot

# Values that must never appear in a log line, whatever their form.
FAMILY, BIRTH, PHONE = "Vercingétorix", "1948-05-02", "0611223344"
PATIENT = {"family_name": FAMILY, "given_name": "Jeanne\u0000", "birth_date": BIRTH, "phone": PHONE}


def assert_no_patient_data(caplog: pytest.LogCaptureFixture) -> None:
    logged = caplog.text + "".join(
        str(vars(r)) + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
        for r in caplog.records
    )
    for value in (FAMILY, BIRTH, PHONE, "Jeanne", "11 22 33 44", "+33611223344"):
        assert value not in logged, value


async def test_engine_never_renders_bind_parameters_into_errors(database_url):
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as failure:
                await conn.execute(
                    text("SELECT CAST(:ins AS integer) + CAST(:nul AS text)::integer"),
                    {"ins": "1", "nul": f"{FAMILY}\u0000"},
                )
    finally:
        await engine.dispose()
    assert FAMILY not in str(failure.value)
    assert "hidden due to hide_parameters" in str(failure.value)


async def test_nul_in_an_mt_request_leaves_no_patient_data_in_the_log(client, territory, caplog):
    caplog.set_level(logging.DEBUG)
    body = {"patient": PATIENT, "ald": False, "precarity": False, "source": "hotline"}
    r = await client.post("/v1/mt-requests", json=body, headers={**territory.coordinator, **idem()})
    assert r.status_code in (422, 500)
    assert_no_patient_data(caplog)


async def test_nul_in_a_booking_leaves_no_patient_data_in_the_log(client, territory, caplog):
    slot_id = await add_slot(client, territory, territory.practitioner_id, 3)
    caplog.set_level(logging.DEBUG)
    r = await client.post(
        "/v1/bookings",
        json={"slot_id": slot_id, "patient": PATIENT},
        headers={**territory.regulator, **idem()},
    )
    assert r.status_code in (422, 500)
    assert_no_patient_data(caplog)


async def test_failing_statement_carrying_patient_data_leaves_none_in_the_log(
    settings, sessionmaker, caplog
):
    """Whatever the edge refuses first, a statement the database rejects — here with a
    message that quotes the value — is logged without its message or parameters."""
    app = create_app(settings)
    app.state.sessionmaker = sessionmaker

    @app.get("/test-failing-statement")
    async def failing(session: AsyncSession = Depends(get_session)) -> None:
        await session.execute(
            text("SELECT CAST(:name AS integer), CAST(:phone AS date)"),
            {"name": f"{FAMILY} {BIRTH}", "phone": PHONE},
        )

    logging.getLogger().addHandler(caplog.handler)  # create_app set the handlers afresh
    caplog.set_level(logging.DEBUG)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.get("/test-failing-statement")
    assert r.status_code == 500
    assert FAMILY not in r.text
    assert any(rec.getMessage() == "unhandled database error" for rec in caplog.records)
    assert_no_patient_data(caplog)


async def test_response_failing_its_model_leaves_no_patient_data_in_the_log(
    settings, sessionmaker, caplog
):
    """A bug that makes a response fail its schema: pydantic's message quotes the response,
    patient included; the log keeps only where and what kind of error."""
    from pydantic import BaseModel

    class Out(BaseModel):
        family_name: int

    app = create_app(settings)
    app.state.sessionmaker = sessionmaker

    @app.get("/test-bad-response", response_model=Out)
    async def bad() -> dict[str, str]:
        return {"family_name": f"{FAMILY} {BIRTH} {PHONE}"}

    logging.getLogger().addHandler(caplog.handler)  # create_app set the handlers afresh
    caplog.set_level(logging.DEBUG)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.get("/test-bad-response")
    assert r.status_code == 500
    assert any(rec.getMessage() == "unhandled validation error" for rec in caplog.records)
    assert_no_patient_data(caplog)
