"""Publishing availability: rules, one-off slots, unavailabilities, a practitioner's agenda."""

import uuid
from datetime import timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Query, Response, status

from app.api.deps import CallerDep, ReadCallerDep, ReadSessionDep, SessionDep
from app.bounds import BoundedDatetime
from app.clock import now_utc
from app.crisis import capacity
from app.directory.practitioner_service import get_practitioner
from app.scheduling import agenda, one_off_slots, publication, publishers, schemas, unavailabilities
from app.scheduling.models import AvailabilityRule, Slot
from app.validators import local

router = APIRouter(prefix="/v1/practitioners/{practitioner_id}", tags=["availability"])


def _rule_out(rule: AvailabilityRule, tz: ZoneInfo | None = None) -> schemas.RuleOut:
    out = schemas.RuleOut.model_validate(rule)
    if tz is not None:
        out.created_at = out.created_at.astimezone(tz)
        if out.materialized_until is not None:
            out.materialized_until = out.materialized_until.astimezone(tz)
    return out


def _slot_out(slot: Slot, tz: ZoneInfo) -> schemas.SlotOut:
    out = schemas.SlotOut.model_validate(slot)
    out.start, out.end = out.start.astimezone(tz), out.end.astimezone(tz)
    return out


@router.post(
    "/availability-rules",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.RuleCreated,
    responses={409: {"description": "A generated slot overlaps an existing one"}},
)
async def create_rule(
    practitioner_id: uuid.UUID, body: schemas.RuleIn, session: SessionDep, caller: CallerDep
) -> schemas.RuleCreated:
    """Publish a recurring availability; its slots over the horizon exist (and show in search)
    as soon as this returns."""
    rule, created, tz = await publication.create_rule(session, caller, practitioner_id, body)
    return schemas.RuleCreated(
        **_rule_out(rule, tz).model_dump(), slots=schemas.MaterializationOut(created=created)
    )


@router.get("/availability-rules", response_model=list[schemas.RuleOut])
async def list_rules(
    practitioner_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> list[schemas.RuleOut]:
    _, tz = await publishers.publishing_practitioner(session, caller, practitioner_id)
    return [
        _rule_out(r, tz) for r in await publication.list_rules(session, caller, practitioner_id)
    ]


@router.get("/availability-rules/{rule_id}", response_model=schemas.RuleOut)
async def get_rule(
    practitioner_id: uuid.UUID, rule_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> schemas.RuleOut:
    rule, _, tz = await publication.get_rule(session, caller, practitioner_id, rule_id)
    return _rule_out(rule, tz)


@router.patch("/availability-rules/{rule_id}", response_model=schemas.RuleCreated)
async def update_rule(
    practitioner_id: uuid.UUID,
    rule_id: uuid.UUID,
    body: schemas.RulePatch,
    session: SessionDep,
    caller: CallerDep,
) -> schemas.RuleCreated:
    """Change a rule: its future free slots are replaced; held and booked slots stay."""
    rule, counts = await publication.update_rule(session, caller, practitioner_id, rule_id, body)
    _, tz = await publishers.publishing_practitioner(session, caller, practitioner_id)
    return schemas.RuleCreated(**_rule_out(rule, tz).model_dump(), slots=counts)


@router.delete("/availability-rules/{rule_id}", response_model=schemas.MaterializationOut)
async def delete_rule(
    practitioner_id: uuid.UUID, rule_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> schemas.MaterializationOut:
    """End a rule: its future free slots disappear; held and booked slots stay."""
    return await publication.delete_rule(session, caller, practitioner_id, rule_id)


@router.post(
    "/slots",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.SlotOut,
    responses={409: {"description": "Overlaps an existing slot or an unavailability"}},
)
async def create_slot(
    practitioner_id: uuid.UUID, body: schemas.OneOffSlotIn, session: SessionDep, caller: CallerDep
) -> schemas.SlotOut:
    """Publish a one-off slot; with `crisis_id`, as capacity of the crisis running in the
    practitioner's territory (422 otherwise, or for a slot not visible to the SAS)."""
    if body.crisis_id is not None:
        practitioner = await get_practitioner(session, caller, practitioner_id)
        await capacity.check_crisis_slot(
            session, body.crisis_id, practitioner.territory_id, body.visibility
        )
    slot, tz = await one_off_slots.create_one_off_slot(
        session, caller, practitioner_id, body, crisis_id=body.crisis_id
    )
    return _slot_out(slot, tz)


@router.get("/slots", response_model=list[schemas.SlotOut])
async def list_slots(
    practitioner_id: uuid.UUID,
    session: ReadSessionDep,
    caller: ReadCallerDep,
    from_: Annotated[BoundedDatetime | None, Query(alias="from")] = None,
    to: BoundedDatetime | None = None,
) -> Response:
    """The practitioner's agenda in every status (default: the next 7 days), with its
    surnuméraires: `source` "overbook", `id` the booking's, `status` the booking's."""
    start = from_ or now_utc()
    end = to or start + timedelta(days=7)
    slots, tz = await agenda.list_practitioner_slots(session, caller, practitioner_id, start, end)
    # Hundreds of slots a week: the rows go straight to JSON, shaped as SlotOut, in local
    # time (an offset of zero written `Z`, as pydantic writes it). asyncpg's UUIDs are not
    # uuid.UUID to orjson: `default=str` writes them.
    body = orjson.dumps(
        [
            {**row._asdict(), "start": row.start.astimezone(tz), "end": row.end.astimezone(tz)}
            for row in slots
        ],
        default=str,
        option=orjson.OPT_UTC_Z,
    )
    return Response(body, media_type="application/json")


@router.post(
    "/unavailabilities",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.UnavailabilityOut,
)
async def create_unavailability(
    practitioner_id: uuid.UUID,
    body: schemas.UnavailabilityIn,
    session: SessionDep,
    caller: CallerDep,
) -> schemas.UnavailabilityOut:
    """Declare an absence: free and held slots inside become unavailable; booked slots and
    surnuméraires (`booking_id`, no `slot_id`) stay and are listed as `conflicts` for the
    practice to handle. An absence overlapping another of the practitioner is a 409."""
    unavailability, count, conflicts, tz = await unavailabilities.create_unavailability(
        session, caller, practitioner_id, body
    )
    return schemas.UnavailabilityOut(
        id=unavailability.id,
        practitioner_id=unavailability.practitioner_id,
        start=local(unavailability.start, str(tz)),
        end=local(unavailability.end, str(tz)),
        reason=unavailability.reason,
        slots_made_unavailable=count,
        conflicts=[
            schemas.ConflictOut(
                slot_id=c.slot_id,
                booking_id=c.booking_id,
                start=c.start.astimezone(tz),
                end=c.end.astimezone(tz),
                status=c.status,
            )
            for c in conflicts
        ],
        created_at=local(unavailability.created_at, str(tz)),
    )


@router.delete("/unavailabilities/{unavailability_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_unavailability(
    practitioner_id: uuid.UUID,
    unavailability_id: uuid.UUID,
    session: SessionDep,
    caller: CallerDep,
) -> Response:
    await unavailabilities.delete_unavailability(
        session, caller, practitioner_id, unavailability_id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
