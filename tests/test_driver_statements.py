"""Statements run on the asyncpg connection under a session (the hot paths) belong to the
session's transaction: they commit and roll back with the rest of the request."""

import uuid

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.types import Uuid

from app.db import DriverStatement, make_sessionmaker
from app.directory.models import Territory

TXID = DriverStatement(select(func.txid_current()))
INSERT_TERRITORY = DriverStatement(
    text(
        "INSERT INTO territory (id, name, timezone, department) "
        "VALUES (:id, 'CPTS driver test', 'Europe/Paris', '15')"
    ).bindparams(bindparam("id", type_=Uuid))
)


async def test_a_driver_statement_run_first_begins_the_session_transaction(engine):
    async with make_sessionmaker(engine)() as session:
        row = await TXID.fetchrow(session)
        assert row is not None
        same = await session.scalar(text("SELECT txid_current()"))
        assert row[0] == same
        await session.rollback()


async def test_driver_writes_roll_back_with_the_session(engine):
    territory_id = uuid.uuid4()
    factory = make_sessionmaker(engine)
    async with factory() as session:
        await INSERT_TERRITORY.execute(session, id=territory_id)
        assert await session.get(Territory, territory_id) is not None
        await session.rollback()
    async with factory() as session:
        assert await session.get(Territory, territory_id) is None


async def test_values_written_in_the_statement_need_no_parameter():
    statement = DriverStatement(select(Territory.id).where(Territory.department == "15"))
    assert statement.names == ("department_1",)
    assert statement.args({}) == ["15"]
