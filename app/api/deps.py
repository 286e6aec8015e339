"""Annotated dependency aliases shared by the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.client_certs import verified_subject
from app.config import Settings, get_settings
from app.directory.callers import authenticate
from app.security import Caller


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request owns the transaction: one commit at the edge, rollback on any error."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# scope="function": commit before the response is sent, so a 2xx always means committed.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """For endpoints that only read (the slot search): each statement runs on its own,
    without a transaction, which spares every request the BEGIN and COMMIT round trips.
    (A session bound to a connection already in a transaction, as in the tests, reads in
    that transaction.)"""
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with factory() as session:
        if isinstance(session.bind, AsyncEngine):
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]


_bearer = HTTPBearer(auto_error=False, description="Créneau API key")


async def _authenticated(request: Request, session: AsyncSession) -> Caller:
    # The scheme documents the header in OpenAPI; the raw header gives precise errors.
    # Without a key, the SAS platform's verified client certificate (mutual TLS) may stand in.
    caller = await authenticate(
        session,
        request.headers.get("authorization"),
        verified_subject(request.scope),
        request.app.state.settings.sas_platform_subjects,
        request.app.state.caller_cache,
    )
    request.app.state.rate_limiter.check(caller.key_id)
    return caller


async def get_caller(
    request: Request,
    session: SessionDep,
    _scheme: Annotated[object, Security(_bearer)] = None,
) -> Caller:
    return await _authenticated(request, session)


async def get_read_caller(
    request: Request,
    session: ReadSessionDep,
    _scheme: Annotated[object, Security(_bearer)] = None,
) -> Caller:
    """`get_caller` on the read-only session (endpoints that use ReadSessionDep)."""
    return await _authenticated(request, session)


async def get_optional_caller(
    request: Request,
    session: SessionDep,
    _scheme: Annotated[object, Security(_bearer)] = None,
) -> Caller | None:
    """The caller, or None for a request with neither key nor client certificate (what is
    public, such as the SMART Scheduling Links of `public` slots)."""
    if request.headers.get("authorization") is None and verified_subject(request.scope) is None:
        return None
    return await _authenticated(request, session)


CallerDep = Annotated[Caller, Depends(get_caller)]
OptionalCallerDep = Annotated[Caller | None, Depends(get_optional_caller)]
ReadCallerDep = Annotated[Caller, Depends(get_read_caller)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
