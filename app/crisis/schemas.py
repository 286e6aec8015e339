"""What the API takes and gives for declaring and ending a crisis, its calls, and the
capacity a called GP opens."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from app.bounds import BoundedDatetime
from app.crisis.plan_schemas import Pledge
from app.crisis.report_schemas import CrisisSummary
from app.validators import Name, OutModel, StrictModel

CrisisKind = Literal["epidemic", "heatwave", "ed_closure", "cyber_attack", "other"]
# An INSEE code, a postal code, a name or "Name (code)", resolved through the referential.
CommuneValue = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class CrisisIn(StrictModel):
    kind: CrisisKind
    title: Name
    started_at: BoundedDatetime
    expected_end_at: BoundedDatetime
    communes: list[CommuneValue] = Field(
        default_factory=list,
        max_length=200,
        description="INSEE codes, postal codes or names; empty: the whole territory",
    )
    territory_id: uuid.UUID | None = Field(
        default=None, description="For an admin (the ARS); a coordinator declares for its own"
    )

    @model_validator(mode="after")
    def _period(self) -> CrisisIn:
        if self.expected_end_at <= self.started_at:
            raise ValueError("expected_end_at must be after started_at")
        return self


class CrisisCallOut(OutModel):
    id: uuid.UUID
    practitioner_id: uuid.UUID
    practice_id: uuid.UUID
    sent_at: datetime
    mail_status: str
    opened_at: datetime | None
    slots_opened: int
    cap_before: int | None


class CrisisOut(OutModel):
    id: uuid.UUID
    territory_id: uuid.UUID
    plan_id: uuid.UUID | None
    kind: str
    title: str
    started_at: datetime
    expected_end_at: datetime
    communes: list[str]
    declared_at: datetime
    ended_at: datetime | None
    running: bool
    volunteers_called: int = Field(description="0 when the territory has no plan")
    note: str | None = None
    calls: list[CrisisCallOut] = Field(default_factory=list)


class CrisisListItem(CrisisSummary):
    """A crisis in the list, with its summary figures (the report has the rest)."""

    plan_id: uuid.UUID | None
    volunteers_called: int = Field(description="Volunteers of the plan called (0 without a plan)")
    pledges_honoured: int = Field(description="Calls whose GP opened capacity through the link")
    slots_opened: int = Field(description="Slots the called GPs opened through their links")
    report: str = Field(description="The crisis' report (`.csv` appended: as CSV)")


class CrisisEndOut(CrisisOut):
    slots_closed: int = Field(description="Future free crisis slots closed")
    slots_kept: int = Field(description="Future crisis slots kept: booked or held")


class OpenIn(StrictModel):
    pledges: list[Pledge] | None = Field(
        default=None, max_length=10, description="Default: the GP's pledges in the plan"
    )


class OpenOut(StrictModel):
    call_id: uuid.UUID
    crisis_id: uuid.UUID
    rules: int
    slots_opened: int
    slots_skipped: int = Field(description="Slots not made: they overlapped existing ones")
