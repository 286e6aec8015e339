"""Annotated dependency aliases shared by the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.client_certs import verified_subject
from app.config import Settings, get_settings
from app.security import Caller, authenticate


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


_bearer = HTTPBearer(auto_error=False, description="Créneau API key")


async def get_caller(
    request: Request,
    session: SessionDep,
    _scheme: Annotated[object, Security(_bearer)] = None,
) -> Caller:
    # The scheme above documents the header in OpenAPI; the raw header gives precise errors.
    # Without a key, the SAS platform's verified client certificate (mutual TLS) may stand in.
    caller = await authenticate(
        session,
        request.headers.get("authorization"),
        verified_subject(request.scope),
        request.app.state.settings.sas_platform_subjects,
    )
    request.app.state.rate_limiter.check(caller.key_id)
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
