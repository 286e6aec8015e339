"""The plan as the ARS reads it (JSON): the document with each volunteer's name, RPPS,
practice and commune resolved from the directory, the territory, the version and the review
status. The input of a new version is the document, plus `territory_id` for an admin."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.crisis import plans
from app.crisis.models import CrisisPlan
from app.crisis.plan_schemas import Contact, PlanDocument, Pledge, Site, Step
from app.directory import communes
from app.directory.models import Territory
from app.validators import local


class PlanIn(PlanDocument):
    """A new version of the plan. `territory_id`: the territory, for an admin (a coordinator
    writes its own territory's plan)."""

    territory_id: uuid.UUID | None = None


class TerritoryRef(BaseModel):
    id: uuid.UUID
    name: str
    timezone: str


class VolunteerOut(BaseModel):
    """A volunteer, resolved: `in_directory` false when the practitioner has left the
    directory since the version was written (its name and practice are then unknown)."""

    practitioner_id: uuid.UUID
    in_directory: bool
    family_name: str | None
    given_name: str | None
    rpps: str | None
    practice_id: uuid.UUID | None
    practice_name: str | None
    commune_insee: str | None
    commune_name: str | None
    email: str | None
    pledges: list[Pledge]
    crisis_overbooking_cap: int | None


class SiteOut(Site):
    commune_name: str | None


class PlanVersionOut(BaseModel):
    """A version in the list: when it was written and reviewed."""

    id: uuid.UUID
    territory_id: uuid.UUID
    version: int
    created_at: datetime
    reviewed_on: date
    review_due_on: date


class PlanOut(BaseModel):
    """A version of the plan for the ARS. `review_due`: a year has passed since
    `reviewed_on` (on the territory's local date); the plan should be reviewed."""

    id: uuid.UUID
    territory: TerritoryRef
    version: int
    created_at: datetime
    reviewed_on: date
    review_due_on: date
    review_due: bool
    raise_overbooking_caps: bool
    contacts: list[Contact]
    volunteers: list[VolunteerOut]
    sites: list[SiteOut]
    steps: list[Step]


def version_out(plan: CrisisPlan, timezone: str) -> PlanVersionOut:
    return PlanVersionOut(
        id=plan.id,
        territory_id=plan.territory_id,
        version=plan.version,
        created_at=local(plan.created_at, timezone),
        reviewed_on=plan.reviewed_on,
        review_due_on=plans.review_due_on(plan.reviewed_on),
    )


async def export(session: AsyncSession, plan: CrisisPlan, now: datetime) -> PlanOut:
    """The version with its references resolved, as of `now` (the review status)."""
    territory = await session.get(Territory, plan.territory_id)
    assert territory is not None
    doc = PlanDocument.model_validate(plan.document)
    gps = {
        gp.id: gp
        for gp in await plans.practitioners(
            session, plan.territory_id, {v.practitioner_id for v in doc.volunteers}
        )
    }
    names = await communes.names(
        session,
        {gp.commune_insee for gp in gps.values()} | {s.commune_insee for s in doc.sites},
    )
    volunteers = []
    for v in doc.volunteers:
        gp = gps.get(v.practitioner_id)
        volunteers.append(
            VolunteerOut(
                practitioner_id=v.practitioner_id,
                in_directory=gp is not None,
                family_name=gp.family_name if gp else None,
                given_name=gp.given_name if gp else None,
                rpps=gp.rpps if gp else None,
                practice_id=gp.practice_id if gp else None,
                practice_name=gp.practice_name if gp else None,
                commune_insee=gp.commune_insee if gp else None,
                commune_name=names.get(gp.commune_insee) if gp else None,
                email=v.email,
                pledges=v.pledges,
                crisis_overbooking_cap=v.crisis_overbooking_cap,
            )
        )
    status = plans.review(plan.reviewed_on, plans.local_today(now, territory.timezone))
    return PlanOut(
        id=plan.id,
        territory=TerritoryRef(id=territory.id, name=territory.name, timezone=territory.timezone),
        version=plan.version,
        created_at=local(plan.created_at, territory.timezone),
        reviewed_on=plan.reviewed_on,
        review_due_on=status.due_on,
        review_due=status.due,
        raise_overbooking_caps=doc.raise_overbooking_caps,
        contacts=doc.contacts,
        volunteers=volunteers,
        sites=[
            SiteOut(**s.model_dump(), commune_name=names.get(s.commune_insee)) for s in doc.sites
        ],
        steps=doc.steps,
    )
