"""GPs' médecin traitant capacity (capacity less attachments, derived, never stored) and the
candidates of a request: GPs with room left, nearest first, those the patient declined last."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, func, null, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory import communes
from app.directory.models import Practice, Practitioner
from app.medecin_traitant import history, schemas
from app.medecin_traitant.models import MtRequest
from app.medecin_traitant.service import get
from app.scheduling.queries import great_circle_km
from app.security import ADMIN, COORDINATOR, Caller


def _attached_to(practitioner_id: Any) -> Select[int]:
    return select(func.count()).where(
        MtRequest.attached_practitioner_id == practitioner_id, MtRequest.status == "attached"
    )


def attached_count(practitioner_id: Any) -> ColumnElement[int]:
    return _attached_to(practitioner_id).scalar_subquery()


async def remaining_capacity(session: AsyncSession, practitioner: Practitioner) -> int:
    """Capacity less attachments: derived, never stored, so it cannot drift."""
    used = await session.scalar(_attached_to(practitioner.id)) or 0
    return practitioner.mt_capacity - used


async def candidates(
    session: AsyncSession, caller: Caller, request_id: uuid.UUID, *, limit: int = 50
) -> list[schemas.CandidateOut]:
    """GPs of the territory with room left, honouring the patient's preferences, nearest to
    the patient's commune first (its position: its practices in the directory, else those of
    its postal codes), those the
    patient already declined last."""
    caller.require(COORDINATOR, ADMIN)
    view = await get(session, caller, request_id)
    r = view.request
    remaining = (Practitioner.mt_capacity - attached_count(Practitioner.id)).label("remaining")
    origin = None
    if r.patient_commune_insee:
        # Its practices' position, else that of the practices of its postal codes.
        commune = await communes.get(session, r.patient_commune_insee)
        postal_codes = commune.postal_codes if commune is not None else ()
        origin = await communes.centre(session, [r.patient_commune_insee], postal_codes)
    distance = (great_circle_km(*origin) if origin else null()).label("distance_km")
    stmt = (
        select(Practitioner, Practice, remaining, distance)
        .join(Practice, Practice.id == Practitioner.practice_id)
        .where(
            Practitioner.territory_id == r.territory_id,
            Practitioner.profession == "general_practitioner",
            remaining > 0,
        )
    )
    if r.preferred_communes:
        stmt = stmt.where(Practice.commune_insee.in_(r.preferred_communes))
    if r.preferred_gender:
        stmt = stmt.where(Practitioner.gender == r.preferred_gender)
    # A GP the patient has already declined comes after the others, never first.
    declined = history.declined_by_patient(r.id, Practitioner.id)
    stmt = stmt.order_by(
        declined, distance.asc().nulls_last(), remaining.desc(), Practitioner.id
    ).limit(limit)
    return [
        schemas.CandidateOut(
            practitioner=schemas.PractitionerRef.model_validate(p),
            practice_id=pr.id,
            practice_name=pr.name,
            commune_insee=pr.commune_insee,
            gender=p.gender,
            mt_capacity=p.mt_capacity,
            remaining_capacity=rem,
            distance_km=round(dist, 2) if dist is not None else None,
        )
        for p, pr, rem, dist in (await session.execute(stmt)).all()
    ]


async def capacities(session: AsyncSession, caller: Caller) -> list[tuple[Practitioner, int]]:
    """The territory's GPs with their attached patients (capacity less attached is left)."""
    caller.require(COORDINATOR, ADMIN)
    stmt = select(Practitioner, attached_count(Practitioner.id)).where(
        Practitioner.profession == "general_practitioner"
    )
    if not caller.instance_wide:
        stmt = stmt.where(Practitioner.territory_id.in_(caller.territory_ids))
    rows = await session.execute(
        stmt.order_by(Practitioner.family_name, Practitioner.given_name).limit(2000)
    )
    return [(p, int(n)) for p, n in rows.all()]
