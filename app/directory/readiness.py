"""Whether a territory can be sent to the national SAS platform, and why not.

The guide's CPTS Organization needs the territory's FINESS (identifier 1..1, `1` + 9 digits),
and its Location needs each practice's street, postal code and city. What misses one of them is
never sent to the platform (`sas_bridge.fhir_contexts`); coordinators and admins see the reasons in
`/v1/territories` and on the directory page."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory.models import Practice, Practitioner, Territory

NO_FINESS = "finess_missing"
PRACTICE_ADDRESS = "practice_address_incomplete"
REASON_TEXT = {
    NO_FINESS: "Le territoire n'a pas de FINESS : la CPTS ne peut pas être décrite à la "
    "plateforme SAS.",
    PRACTICE_ADDRESS: "Des cabinets n'ont pas de code postal ou de ville : leurs créneaux ne "
    "sont pas envoyés à la plateforme SAS.",
}


def territory_ready() -> ColumnElement[bool]:
    return Territory.finess.is_not(None)


def practice_ready() -> ColumnElement[bool]:
    return and_(Practice.postal_code.is_not(None), Practice.city.is_not(None))


def ready_practitioner_ids() -> Any:
    """The practitioners whose slots may reach the platform (a subquery)."""
    return (
        select(Practitioner.id)
        .join(Practice, Practice.id == Practitioner.practice_id)
        .join(Territory, Territory.id == Practitioner.territory_id)
        .where(territory_ready(), practice_ready())
    )


async def reasons(
    session: AsyncSession, territories: Iterable[Territory]
) -> dict[uuid.UUID, list[str]]:
    """Each territory's reasons not to be sent to the platform (empty: ready). One statement."""
    found = {t.id: ([] if t.finess else [NO_FINESS]) for t in territories}
    if not found:
        return found
    incomplete = await session.execute(
        select(Practice.territory_id, func.count())
        .where(Practice.territory_id.in_(list(found)), ~practice_ready())
        .group_by(Practice.territory_id)
    )
    for territory_id, _ in incomplete.all():
        found[territory_id].append(PRACTICE_ADDRESS)
    return found
