"""The calls of a crisis: each volunteer GP of the territory's plan is called once (a unique
key on the crisis and the GP: a retried declaration or a second run calls nobody twice), by
e-mail when the plan gives an address (sent after commit by `send_pending`, the job) and by
the webhook `crisis.declared` to its practice, each with the call's signed link. When the plan
says so, the GP's surnuméraire cap is raised for the crisis (the former one kept on the call,
restored by `stop`). The SAS of the territory is told by the same webhook, without links."""

from __future__ import annotations

import uuid
from datetime import datetime
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import outgoing_mail
from app.activity.service import record as record_event
from app.config import Settings
from app.crisis import links
from app.crisis.models import Crisis, CrisisCall
from app.crisis.plan_schemas import PlanDocument
from app.directory.models import Practitioner, Territory, regulator_territory
from app.outbox.messages import enqueue_webhooks

KIND_LABELS = {
    "epidemic": "épidémie",
    "heatwave": "canicule",
    "ed_closure": "fermeture d'urgences",
    "cyber_attack": "cyberattaque",
    "other": "autre",
}


def crisis_payload(crisis: Crisis) -> dict[str, Any]:
    return {
        "id": str(crisis.id),
        "territory_id": str(crisis.territory_id),
        "kind": crisis.kind,
        "title": crisis.title,
        "communes": list(crisis.communes),
        "started_at": crisis.started_at.isoformat(),
        "expected_end_at": crisis.expected_end_at.isoformat(),
        "ended_at": crisis.ended_at.isoformat() if crisis.ended_at else None,
    }


async def tell_sas(session: AsyncSession, event: str, data: dict[str, Any]) -> None:
    """The webhook `event` to each SAS serving the crisis' territory."""
    territory_id = uuid.UUID(data["crisis"]["territory_id"])
    regulators = await session.scalars(
        select(regulator_territory.c.regulator_id).where(
            regulator_territory.c.territory_id == territory_id
        )
    )
    for regulator_id in regulators:
        await enqueue_webhooks(
            session,
            event,
            data,
            practice_id=None,
            regulator_id=regulator_id,
            territory_id=territory_id,
        )


async def call_volunteers(
    session: AsyncSession,
    crisis: Crisis,
    plan: PlanDocument | None,
    now: datetime,
    settings: Settings,
    actor_key_id: uuid.UUID | None = None,
) -> int:
    """Call the plan's volunteers who are GPs of the territory and not yet called for this
    crisis; returns how many were called now."""
    if plan is None or not plan.volunteers:
        return 0
    by_id = {v.practitioner_id: v for v in plan.volunteers}
    gps = list(
        await session.scalars(
            select(Practitioner)
            .where(
                Practitioner.id.in_(list(by_id)),
                Practitioner.territory_id == crisis.territory_id,
            )
            .order_by(Practitioner.id)
            .with_for_update()
        )
    )
    called = 0
    for gp in gps:
        volunteer = by_id[gp.id]
        raise_cap = plan.raise_overbooking_caps and volunteer.crisis_overbooking_cap is not None
        call_id = await session.scalar(
            insert(CrisisCall)
            .values(
                id=uuid.uuid4(),
                crisis_id=crisis.id,
                practitioner_id=gp.id,
                practice_id=gp.practice_id,
                email=volunteer.email,
                sent_at=now,
                mail_status="pending" if volunteer.email else "none",
                cap_before=gp.overbooking_daily_cap if raise_cap else None,
                accepted_overbooking_before=gp.accepts_overbooking if raise_cap else None,
            )
            .on_conflict_do_nothing(index_elements=["crisis_id", "practitioner_id"])
            .returning(CrisisCall.id)
        )
        if call_id is None:
            continue  # called already
        if raise_cap:
            assert volunteer.crisis_overbooking_cap is not None
            gp.overbooking_daily_cap = volunteer.crisis_overbooking_cap
            gp.accepts_overbooking = True
        link = links.url(settings, call_id, gp.id, crisis.expected_end_at)
        payload = {
            "crisis": crisis_payload(crisis),
            "call": {
                "id": str(call_id),
                "practitioner_id": str(gp.id),
                "pledges": [p.model_dump(mode="json") for p in volunteer.pledges],
                "link": link,
                "link_expires_at": crisis.expected_end_at.isoformat(),
            },
        }
        await enqueue_webhooks(
            session,
            "crisis.declared",
            payload,
            practice_id=gp.practice_id,
            regulator_id=None,
            territory_id=crisis.territory_id,
        )
        await record_event(
            session,
            "crisis.called",
            territory_id=crisis.territory_id,
            practitioner_id=gp.id,
            subject_id=crisis.id,
            actor_key_id=actor_key_id,
            call_id=str(call_id),
            cap_raised=raise_cap,
        )
        called += 1
    await session.flush()
    return called


async def stop(session: AsyncSession, crisis: Crisis) -> int:
    """At the end: the e-mails not yet sent are not sent (`none`), raised caps restored.
    Returns how many e-mails were stopped."""
    stopped = await session.execute(
        update(CrisisCall)
        .where(CrisisCall.crisis_id == crisis.id, CrisisCall.mail_status == "pending")
        .values(mail_status="none")
    )
    raised = await session.execute(
        select(
            CrisisCall.practitioner_id,
            CrisisCall.cap_before,
            CrisisCall.accepted_overbooking_before,
        ).where(CrisisCall.crisis_id == crisis.id, CrisisCall.cap_before.is_not(None))
    )
    for practitioner_id, cap, accepted in raised.all():
        await session.execute(
            update(Practitioner)
            .where(Practitioner.id == practitioner_id)
            .values(
                overbooking_daily_cap=cap,
                accepts_overbooking=bool(accepted) if accepted is not None else bool(cap),
            )
        )
    return int(stopped.rowcount or 0)  # type: ignore[attr-defined]


def call_message(
    settings: Settings, call: CrisisCall, crisis: Crisis, timezone: str, name: str
) -> EmailMessage:
    tz = ZoneInfo(timezone)
    link = links.url(settings, call.id, call.practitioner_id, crisis.expected_end_at)
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = call.email
    message["Subject"] = f"Créneau : situation sanitaire exceptionnelle — {crisis.title}"
    message.set_content(
        f"Bonjour Docteur {name},\n\n"
        f"Votre CPTS a déclaré une situation sanitaire exceptionnelle "
        f"({KIND_LABELS.get(crisis.kind, crisis.kind)}) : {crisis.title}, depuis le "
        f"{crisis.started_at.astimezone(tz):%d/%m/%Y à %H:%M}, fin prévue le "
        f"{crisis.expected_end_at.astimezone(tz):%d/%m/%Y à %H:%M}.\n\n"
        "Vous êtes volontaire dans son plan de crise. Ouvrez en une fois la capacité de soins "
        "non programmés que vous avez promise (horaires préremplis, modifiables, après "
        f"connexion à votre cabinet) :\n{link}\n\n"
        "Ce lien est valable jusqu'à la fin prévue de la crise.\n\n— Créneau\n"
    )
    return message


async def send_pending(
    session: AsyncSession, settings: Settings, limit: int = 50
) -> dict[str, int]:
    """Job: send the e-mails of committed calls of running crises (claimed with SKIP
    LOCKED), each marked sent or failed, never sent twice; none once the crisis has ended."""
    rows = (
        await session.execute(
            select(CrisisCall, Crisis, Practitioner.family_name, Territory.timezone)
            .join(Crisis, Crisis.id == CrisisCall.crisis_id)
            .join(Territory, Territory.id == Crisis.territory_id)
            .join(Practitioner, Practitioner.id == CrisisCall.practitioner_id)
            .where(CrisisCall.mail_status == "pending", Crisis.ended_at.is_(None))
            .order_by(CrisisCall.sent_at, CrisisCall.id)
            .limit(limit)
            .with_for_update(of=CrisisCall, skip_locked=True)
        )
    ).all()
    mails = (
        (call, call_message(settings, call, crisis, timezone, name))
        for call, crisis, name, timezone in rows
    )
    counts = await outgoing_mail.send_each(settings, mails, "crisis call")
    await session.flush()
    return counts
