"""Remaining médecin traitant capacity never goes negative, whatever the concurrency."""

import asyncio
import uuid
from datetime import date

from sqlalchemy import func, select

from app.db import make_sessionmaker
from app.errors import AppError
from app.medecin_traitant import schemas, service, transitions
from app.medecin_traitant.models import MtRequest
from app.patient_data import PatientIn
from tests.conftest import ADMIN_CALLER, create_gp


async def test_20_concurrent_accepts_for_the_last_place(engine):
    factory = make_sessionmaker(engine)
    async with factory() as session:
        gp = await create_gp(session, "CPTS MT", mt_capacity=1)
        coordinator = ADMIN_CALLER
        ids = []
        for i in range(20):
            view = await service.register(
                session,
                coordinator,
                schemas.MtRequestIn(
                    territory_id=gp.territory_id,
                    patient=PatientIn(
                        family_name=f"Concurrent{i}",
                        given_name="Jean",
                        birth_date=date(1960, 1, 1),
                        phone=f"06 00 00 00 {i:02d}",
                    ),
                    ald=False,
                    precarity=False,
                    source="hotline",
                ),
            )
            await transitions.propose(
                session, coordinator, view.request.id, schemas.ProposalIn(practitioner_id=gp.id)
            )
            ids.append(view.request.id)
        await session.commit()

    async def accept(request_id: uuid.UUID) -> str:
        async with factory() as session:
            try:
                await transitions.accept(session, coordinator, request_id)
                await session.commit()
                return "attached"
            except AppError as exc:
                return str(exc.status)

    results = await asyncio.gather(*(accept(i) for i in ids))
    assert results.count("attached") == 1 and results.count("409") == 19
    async with factory() as session:
        attached = await session.scalar(
            select(func.count())
            .select_from(MtRequest)
            .where(MtRequest.attached_practitioner_id == gp.id, MtRequest.status == "attached")
        )
    assert attached == 1
