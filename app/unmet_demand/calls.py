"""Calls for slots: when a territory's free SAS slots in the next hours fall under its floor,
the GPs who accept such calls are asked for more, by e-mail (SMTP settings) and by the
webhook event `offer.low` to their practice (the outbox). At most one call a GP and local day
(a unique key); every call is logged with what it produced (slots published within 24 h).
E-mails leave after commit: a call is stored `pending`, and `send_pending` sends it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from sqlalchemy import ARRAY, Date, DateTime, Integer, bindparam, func, literal, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from app import outgoing_mail
from app.activity.service import record as record_event
from app.activity.unmet_figures import PRODUCED_SQL
from app.config import Settings, get_settings
from app.directory.models import Practitioner, Territory
from app.directory.practitioner_service import get_practitioner
from app.errors import NotFound, ValidationFailed
from app.outbox.messages import enqueue_webhooks
from app.security import COORDINATOR, PRACTICE, Caller
from app.unmet_demand import call_links, schemas
from app.unmet_demand.models import SlotCall, SlotCallFloor, SlotCallOptIn

# Free SAS slots in the window: free, or held with an expired hold (the search's predicate).
FREE_SQL = """
SELECT count(*) FROM slot
WHERE territory_id = :t AND visibility IN ('sas', 'public') AND start >= :now AND start < :until
  AND (status = 'free' OR (status = 'held' AND hold_expires_at <= :now))
"""


def coordinator_territory(caller: Caller) -> uuid.UUID:
    caller.require(COORDINATOR)
    if caller.territory_id is None:
        raise ValidationFailed.field(["territory_id"], "this key has no territory")
    return caller.territory_id


async def set_floor(
    session: AsyncSession, caller: Caller, data: schemas.FloorIn
) -> schemas.FloorOut:
    territory_id = coordinator_territory(caller)
    await session.execute(
        insert(SlotCallFloor)
        .values(territory_id=territory_id, floor=data.floor, window_hours=data.window_hours)
        .on_conflict_do_update(
            index_elements=["territory_id"],
            set_={"floor": data.floor, "window_hours": data.window_hours, "updated_at": func.now()},
        )
    )
    return schemas.FloorOut(
        territory_id=territory_id, floor=data.floor, window_hours=data.window_hours
    )


async def set_opt_in(
    session: AsyncSession,
    caller: Caller,
    practitioner_id: uuid.UUID,
    data: schemas.OptInIn | None,
) -> None:
    """A GP accepts (data) or no longer accepts (None) calls for slots: the coordinator of
    its territory or its practice says so."""
    caller.require(COORDINATOR, PRACTICE)
    gp = await get_practitioner(session, caller, practitioner_id)
    if caller.role == PRACTICE and gp.practice_id != caller.practice_id:
        raise NotFound("Practitioner not found")
    if data is None:
        row = await session.get(SlotCallOptIn, practitioner_id)
        if row is not None:
            await session.delete(row)
            await session.flush()
        return
    await session.execute(
        insert(SlotCallOptIn)
        .values(practitioner_id=practitioner_id, email=data.email)
        .on_conflict_do_update(index_elements=["practitioner_id"], set_={"email": data.email})
    )


@dataclass(frozen=True)
class Call:
    id: uuid.UUID
    territory_id: uuid.UUID
    practitioner_id: uuid.UUID


async def run(
    session: AsyncSession,
    now: datetime,
    territory_id: uuid.UUID | None = None,
    settings: Settings | None = None,
) -> list[Call]:
    """Check every territory with a floor (or one); call each opted-in GP of a territory under
    its floor who has not been called this local day. Safe to run twice. The webhook carries
    the call's signed link to the prefilled slot form (app.unmet_demand.call_links)."""
    settings = settings or get_settings()
    stmt = select(SlotCallFloor, Territory.timezone).join(
        Territory, Territory.id == SlotCallFloor.territory_id
    )
    if territory_id is not None:
        stmt = stmt.where(SlotCallFloor.territory_id == territory_id)
    calls: list[Call] = []
    for floor, tz in (await session.execute(stmt)).all():
        until = now + timedelta(hours=floor.window_hours)
        free = int(
            await session.scalar(
                text(FREE_SQL), {"t": floor.territory_id, "now": now, "until": until}
            )
            or 0
        )
        if free >= floor.floor:
            continue
        day = now.astimezone(ZoneInfo(tz)).date()
        gps = (
            select(
                func.gen_random_uuid(),
                Practitioner.territory_id,
                Practitioner.id,
                Practitioner.practice_id,
                literal(day, Date),
                literal(now, DateTime(timezone=True)),
                literal(free, Integer),
                literal(floor.floor, Integer),
            )
            .join(SlotCallOptIn, SlotCallOptIn.practitioner_id == Practitioner.id)
            .where(Practitioner.territory_id == floor.territory_id)
        )
        inserted = await session.execute(
            insert(SlotCall)
            .from_select(
                [
                    "id",
                    "territory_id",
                    "practitioner_id",
                    "practice_id",
                    "day",
                    "sent_at",
                    "free_slots",
                    "floor",
                ],
                gps,
            )
            .on_conflict_do_nothing(index_elements=["practitioner_id", "day"])
            .returning(SlotCall.id, SlotCall.practitioner_id, SlotCall.practice_id)
        )
        for call_id, practitioner_id, practice_id in inserted.all():
            payload = {
                "offer": {
                    "territory_id": str(floor.territory_id),
                    "practitioner_id": str(practitioner_id),
                    "free_slots": free,
                    "floor": floor.floor,
                    "window_hours": floor.window_hours,
                    "call_id": str(call_id),
                    "link": call_links.url(settings, call_id, practitioner_id, now),
                    "link_expires_at": call_links.expiry(now).isoformat(),
                }
            }
            await enqueue_webhooks(
                session,
                "offer.low",
                payload,
                practice_id=practice_id,
                regulator_id=None,
                territory_id=floor.territory_id,
            )
            await record_event(
                session,
                "slots.call_sent",
                territory_id=floor.territory_id,
                practitioner_id=practitioner_id,
                subject_id=call_id,
                free_slots=free,
                floor=floor.floor,
                window_hours=floor.window_hours,
            )
            calls.append(Call(call_id, floor.territory_id, practitioner_id))
    return calls


def call_message(
    settings: Settings, call: SlotCall, timezone: str, to: str, name: str
) -> EmailMessage:
    link = call_links.url(settings, call.id, call.practitioner_id, call.sent_at)
    until = call_links.expiry(call.sent_at).astimezone(ZoneInfo(timezone))
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = "Créneau : l'offre de soins non programmés est basse"
    message.set_content(
        f"Bonjour Docteur {name},\n\n"
        f"Il ne reste que {call.free_slots} créneau(x) libre(s) pour le SAS sur votre territoire "
        f"dans les prochaines heures (seuil fixé par la CPTS : {call.floor}). Pouvez-vous ouvrir "
        "quelques créneaux de soins non programmés ?\n\n"
        f"Publier un créneau (formulaire prérempli, après connexion à votre cabinet) :\n{link}\n"
        f"Ce lien est valable jusqu'au {until:%d/%m/%Y à %H:%M}.\n\n"
        "Vous recevez ce message parce que vous avez accepté les appels à créneaux de votre "
        "CPTS ; au plus un par jour.\n\n— Créneau\n"
    )
    return message


async def send_pending(
    session: AsyncSession, settings: Settings, limit: int = 50
) -> dict[str, int]:
    """Job: send the e-mails of committed calls (claimed with SKIP LOCKED); each one is marked
    sent or failed (logged without the address), never sent twice."""
    rows = (
        await session.execute(
            select(SlotCall, SlotCallOptIn.email, Practitioner.family_name, Territory.timezone)
            .join(SlotCallOptIn, SlotCallOptIn.practitioner_id == SlotCall.practitioner_id)
            .join(Territory, Territory.id == SlotCall.territory_id)
            .join(Practitioner, Practitioner.id == SlotCall.practitioner_id)
            .where(SlotCall.mail_status == "pending")
            .order_by(SlotCall.sent_at)
            .limit(limit)
            .with_for_update(of=SlotCall, skip_locked=True)
        )
    ).all()
    mails = (
        (call, call_message(settings, call, timezone, email, name))
        for call, email, name, timezone in rows
    )
    counts = await outgoing_mail.send_each(settings, mails, "call for slots")
    await session.flush()
    return counts


PRODUCED_BY_CALL_SQL = PRODUCED_SQL.replace(
    "{calls}",
    "SELECT c.subject_id AS key, c.id AS eid, c.at, c.practitioner_id, NULL::date AS day "
    "FROM activity_event c WHERE c.territory_id = :t AND c.type = 'slots.call_sent' "
    "AND c.subject_id = ANY(:ids)",
)


async def list_calls(
    session: AsyncSession, caller: Caller, start: datetime, end: datetime
) -> list[schemas.SlotCallOut]:
    """The territory's calls with what each produced: the SAS-visible slots its GP published
    in the 24 h after it (app.activity.unmet_figures.PRODUCED_SQL, as in the indicators)."""
    territory_id = coordinator_territory(caller)
    found = list(
        await session.scalars(
            select(SlotCall)
            .where(
                SlotCall.territory_id == territory_id,
                SlotCall.sent_at >= start,
                SlotCall.sent_at < end,
            )
            .order_by(SlotCall.sent_at, SlotCall.id)
        )
    )
    rows = await session.execute(
        text(PRODUCED_BY_CALL_SQL).bindparams(bindparam("ids", type_=ARRAY(Uuid))),
        {"t": territory_id, "ids": [c.id for c in found]},
    )
    produced = {call_id: int(n) for call_id, _, n in rows}
    return [
        schemas.SlotCallOut(
            id=c.id,
            practitioner_id=c.practitioner_id,
            day=c.day,
            sent_at=c.sent_at,
            free_slots=c.free_slots,
            floor=c.floor,
            mail_status=c.mail_status,
            slots_published_within_24h=int(produced.get(c.id) or 0),
        )
        for c in found
    ]
