"""Médecin traitant request shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from app.patient_data import PatientIn, PatientOut
from app.validators import InseeCode, OutModel, StrictModel

Source = Literal["assurance_maladie", "hotline", "sas", "practice", "cpts", "other"]
MtStatus = Literal["waiting", "proposed", "attached", "withdrawn"]


class Preferences(StrictModel):
    communes_insee: list[InseeCode] | None = Field(default=None, max_length=50)
    practitioner_gender: Literal["female", "male"] | None = None


class MtRequestIn(StrictModel):
    patient: PatientIn
    ald: bool
    precarity: bool
    source: Source
    preferences: Preferences | None = None
    territory_id: uuid.UUID | None = Field(
        default=None, description="Needed only when the caller serves several territories"
    )


class ProposalIn(StrictModel):
    practitioner_id: uuid.UUID


class ReasonIn(StrictModel):
    reason: str = Field(min_length=1, max_length=300)


DeclineReason = Literal["distance", "schedule", "preference", "capacity", "other"]


class DeclineIn(ReasonIn):
    declined_by: Literal["patient", "practitioner"] | None = Field(
        default=None,
        description="Who said no (a practice key declines as the practitioner); kept in the "
        "request's history",
    )
    reason_code: DeclineReason | None = Field(
        default=None,
        description="Why, as the figures count it: `distance` (too far, out of the GP's "
        "area), `schedule` (hours, delays), `preference` (the patient prefers another GP), "
        "`capacity` (the GP's list is full), `other`",
    )


class PractitionerRef(OutModel):
    id: uuid.UUID
    family_name: str
    given_name: str
    rpps: str


class MtRequestOut(OutModel):
    id: uuid.UUID
    territory_id: uuid.UUID
    status: str
    priority: int = Field(description="Number of fragility criteria met (ALD, 70+, precarity)")
    fragile: bool
    criteria: list[str]
    ald: bool
    precarity: bool
    aged_70_or_more: bool
    criteria_to_check: bool = Field(
        description="Declared by the patient on the public page: ALD and precarity count for "
        "priority once the coordinator confirms them"
    )
    source: str
    preferences: Preferences
    registered_at: datetime
    waiting_days: int
    proposed_practitioner: PractitionerRef | None
    proposal_deadline: datetime | None
    attached_practitioner: PractitionerRef | None
    attached_at: datetime | None
    withdrawn_at: datetime | None
    withdraw_reason: str | None
    patient: PatientOut | None


class ProposalOut(OutModel):
    practitioner: PractitionerRef
    proposed_at: datetime
    outcome: Literal["pending", "accepted", "declined", "lapsed", "withdrawn"]
    answered_at: datetime | None
    declined_by: Literal["patient", "practitioner"] | None
    reason_code: DeclineReason | None
    reason: str | None = Field(description="Free text; erased with the patient's data")


class CandidateOut(OutModel):
    practitioner: PractitionerRef
    practice_id: uuid.UUID
    practice_name: str
    commune_insee: str
    commune_name: str | None = Field(default=None, description="The commune's name (referential)")
    gender: str | None
    mt_capacity: int
    remaining_capacity: int
    distance_km: float | None


class ImportLineError(OutModel):
    line: int = Field(description="Line number in the file, the header being line 1")
    field: str = Field(description="The request's field (`family_name`, `birth_date`...)")
    message: str = Field(description="What is wrong, in French, for the coordinator")


class ImportLine(OutModel):
    line: int
    outcome: Literal["created", "merged", "rejected"]
    request_id: uuid.UUID | None = Field(
        description="The request created or merged into (none for a dry run's new request)"
    )
    patient: PatientOut | None = Field(description="As read from the line (none if rejected)")
    ald: bool
    precarity: bool
    notes: list[str] = Field(description="What was read but left out, in French")


class MtImportOut(OutModel):
    dry_run: bool = Field(description="True: nothing was written; what an import would do")
    territory_id: uuid.UUID
    encoding: str = Field(description="`utf-8`, `utf-8-sig` (with a BOM), `cp1252` or `latin-1`")
    delimiter: str
    columns: list[str] = Field(description="The file's header")
    mapping: dict[str, str] = Field(description="Field → column used")
    lines: int = Field(description="Data lines read (blank lines left out)")
    created: int
    merged: int = Field(
        description="Lines of a patient already in the queue (same INS, or name, birth date "
        "and phone), or earlier in the file: merged into that request, never a second place"
    )
    rejected: int
    merged_lines: list[int]
    errors: list[ImportLineError] = Field(description="Every error of every rejected line")
    preview: list[ImportLine] = Field(description="The first lines and what each becomes")
