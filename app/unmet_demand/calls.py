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

from sqlalchemy import (
    ARRAY,
    Date,
    DateTime,
    Integer,
    String,
    bindparam,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from app import outgoing_mail
from app.activity.service import record as record_event
from app.activity.unmet_figures import PRODUCED_SQL
from app.config import Settings, get_settings
from app.directory.models import Practice, Practitioner, Territory
from app.errors import ValidationFailed
from app.outbox.messages import enqueue_webhooks
from app.security import COORDINATOR, Caller
from app.unmet_demand import call_links, schemas
from app.unmet_demand.models import SlotCall, SlotCallAreaFloor, SlotCallFloor, SlotCallOptIn

# Free SAS slots in the window: free, or held with an expired hold (the search's predicate).
FREE_SQL = """
SELECT count(*) FROM slot
WHERE territory_id = :t AND visibility IN ('sas', 'public') AND start >= :now AND start < :until
  AND (status = 'free' OR (status = 'held' AND hold_expires_at <= :now))
"""
# The same in a group of communes: the slots of the GPs whose practice is in one of them.
AREA_FREE_SQL = f"""{FREE_SQL}  AND practitioner_id IN (
    SELECT p.id FROM practitioner p JOIN practice pr ON pr.id = p.practice_id
    WHERE pr.commune_insee = ANY(:communes))
"""  # noqa: S608 (constants only)


def coordinator_territory(caller: Caller) -> uuid.UUID:
    caller.require(COORDINATOR)
    if caller.territory_id is None:
        raise ValidationFailed.field(["territory_id"], "this key has no territory")
    return caller.territory_id


@dataclass(frozen=True)
class Call:
    id: uuid.UUID
    territory_id: uuid.UUID
    practitioner_id: uuid.UUID


@dataclass(frozen=True)
class Floor:
    """A floor to check: a group of communes' (`area`, its name and communes) or, with
    `area_id` None, the territory's."""

    territory_id: uuid.UUID
    timezone: str
    floor: int
    window_hours: int
    area_id: uuid.UUID | None = None
    area: str | None = None
    communes: tuple[str, ...] = ()


async def floors(session: AsyncSession, territory_id: uuid.UUID | None = None) -> list[Floor]:
    """Every floor (or one territory's): the groups of communes first, then the territories,
    so that a GP under both is called for the group (at most once a day in all)."""
    areas = select(SlotCallAreaFloor, Territory.timezone).join(
        Territory, Territory.id == SlotCallAreaFloor.territory_id
    )
    whole = select(SlotCallFloor, Territory.timezone).join(
        Territory, Territory.id == SlotCallFloor.territory_id
    )
    if territory_id is not None:
        areas = areas.where(SlotCallAreaFloor.territory_id == territory_id)
        whole = whole.where(SlotCallFloor.territory_id == territory_id)
    found = [
        Floor(a.territory_id, tz, a.floor, a.window_hours, a.id, a.name, tuple(a.communes))
        for a, tz in (
            await session.execute(
                areas.order_by(SlotCallAreaFloor.territory_id, SlotCallAreaFloor.name)
            )
        ).all()
    ]
    found += [
        Floor(f.territory_id, tz, f.floor, f.window_hours)
        for f, tz in (await session.execute(whole)).all()
    ]
    return found


async def free_slots(session: AsyncSession, floor: Floor, now: datetime) -> int:
    """The free SAS slots a floor counts: the territory's, or those of its communes' GPs."""
    params = {
        "t": floor.territory_id,
        "now": now,
        "until": now + timedelta(hours=floor.window_hours),
    }
    if floor.area_id is None:
        return int(await session.scalar(text(FREE_SQL), params) or 0)
    statement = text(AREA_FREE_SQL).bindparams(bindparam("communes", type_=ARRAY(String(5))))
    return int(await session.scalar(statement, {**params, "communes": list(floor.communes)}) or 0)


async def run(
    session: AsyncSession,
    now: datetime,
    territory_id: uuid.UUID | None = None,
    settings: Settings | None = None,
) -> list[Call]:
    """Check every floor (or one territory's): under a group's floor, call each opted-in GP
    practising in its communes; under the territory's, each opted-in GP of the territory; in
    both, only a GP not called yet this local day. Safe to run twice. The webhook carries
    the call's signed link to the prefilled slot form (app.unmet_demand.call_links)."""
    settings = settings or get_settings()
    calls: list[Call] = []
    for floor in await floors(session, territory_id):
        free = await free_slots(session, floor, now)
        if free >= floor.floor:
            continue
        day = now.astimezone(ZoneInfo(floor.timezone)).date()
        gps = (
            select(
                func.gen_random_uuid(),
                Practitioner.territory_id,
                Practitioner.id,
                Practitioner.practice_id,
                literal(floor.area_id, Uuid),
                literal(day, Date),
                literal(now, DateTime(timezone=True)),
                literal(free, Integer),
                literal(floor.floor, Integer),
            )
            .join(SlotCallOptIn, SlotCallOptIn.practitioner_id == Practitioner.id)
            .where(Practitioner.territory_id == floor.territory_id)
        )
        if floor.area_id is not None:
            gps = gps.join(Practice, Practice.id == Practitioner.practice_id).where(
                Practice.commune_insee.in_(floor.communes)
            )
        inserted = await session.execute(
            insert(SlotCall)
            .from_select(
                [
                    "id",
                    "territory_id",
                    "practitioner_id",
                    "practice_id",
                    "area_id",
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
                    "area": floor.area,
                    "communes": list(floor.communes) if floor.area_id is not None else None,
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
                area_id=str(floor.area_id) if floor.area_id else None,
            )
            calls.append(Call(call_id, floor.territory_id, practitioner_id))
    return calls


def call_message(
    settings: Settings, call: SlotCall, timezone: str, to: str, name: str, area: str | None = None
) -> EmailMessage:
    """The call's e-mail; `area`: the group of communes it was made for (None: the territory)."""
    where = f"dans les communes « {area} »" if area else "sur votre territoire"
    link = call_links.url(settings, call.id, call.practitioner_id, call.sent_at)
    until = call_links.expiry(call.sent_at).astimezone(ZoneInfo(timezone))
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = "Créneau : l'offre de soins non programmés est basse"
    message.set_content(
        f"Bonjour Docteur {name},\n\n"
        f"Il ne reste que {call.free_slots} créneau(x) libre(s) pour le SAS {where} "
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
            select(
                SlotCall,
                SlotCallOptIn.email,
                Practitioner.family_name,
                Territory.timezone,
                SlotCallAreaFloor.name,
            )
            .join(SlotCallOptIn, SlotCallOptIn.practitioner_id == SlotCall.practitioner_id)
            .outerjoin(SlotCallAreaFloor, SlotCallAreaFloor.id == SlotCall.area_id)
            .join(Territory, Territory.id == SlotCall.territory_id)
            .join(Practitioner, Practitioner.id == SlotCall.practitioner_id)
            .where(SlotCall.mail_status == "pending")
            .order_by(SlotCall.sent_at)
            .limit(limit)
            .with_for_update(of=SlotCall, skip_locked=True)
        )
    ).all()
    mails = (
        (call, call_message(settings, call, timezone, email, name, area))
        for call, email, name, timezone, area in rows
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
        (
            await session.execute(
                select(SlotCall, SlotCallAreaFloor.name)
                .outerjoin(SlotCallAreaFloor, SlotCallAreaFloor.id == SlotCall.area_id)
                .where(
                    SlotCall.territory_id == territory_id,
                    SlotCall.sent_at >= start,
                    SlotCall.sent_at < end,
                )
                .order_by(SlotCall.sent_at, SlotCall.id)
            )
        ).all()
    )
    rows = await session.execute(
        text(PRODUCED_BY_CALL_SQL).bindparams(bindparam("ids", type_=ARRAY(Uuid))),
        {"t": territory_id, "ids": [c.id for c, _ in found]},
    )
    produced = {call_id: int(n) for call_id, _, n in rows}
    return [
        schemas.SlotCallOut(
            id=c.id,
            practitioner_id=c.practitioner_id,
            area_id=c.area_id,
            area=area,
            day=c.day,
            sent_at=c.sent_at,
            free_slots=c.free_slots,
            floor=c.floor,
            mail_status=c.mail_status,
            slots_published_within_24h=int(produced.get(c.id) or 0),
        )
        for c, area in found
    ]
