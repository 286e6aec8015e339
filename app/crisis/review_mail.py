"""The crisis plan's yearly review, told by e-mail to the territory's coordinators
(`territory.coordinator_emails`): once per plan version, when app.crisis.plans'
`record_due_reviews` has marked it `pending`, sent after that commit by the job
`crisis_plan_review_mail` through the service's one SMTP sender (app.outgoing_mail)."""

from __future__ import annotations

from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import outgoing_mail
from app.config import Settings
from app.crisis.models import CrisisPlan
from app.crisis.plans import review_due_on
from app.directory.models import Territory

EDIT_PATH = "/coordination/crise/plan/modifier"


def review_message(settings: Settings, plan: CrisisPlan, territory: Territory) -> EmailMessage:
    """One message to every coordinator of the territory (French: they read it)."""
    due_on = review_due_on(plan.reviewed_on)
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = ", ".join(territory.coordinator_emails)
    message["Subject"] = f"Créneau : revue annuelle du plan de crise à faire — {territory.name}"
    message.set_content(
        "Bonjour,\n\n"
        f"Le plan de gestion des situations sanitaires exceptionnelles de {territory.name} "
        f"(version {plan.version}) a été revu pour la dernière fois le "
        f"{plan.reviewed_on:%d/%m/%Y} : sa revue annuelle, à transmettre à l'ARS, est à faire "
        f"depuis le {due_on:%d/%m/%Y}.\n\n"
        "Relisez les contacts, les médecins volontaires et leurs engagements, les lieux et les "
        "étapes, puis enregistrez une nouvelle version revue à la date du jour :\n"
        f"{settings.public_base_url.rstrip('/')}{EDIT_PATH}\n\n— Créneau\n"
    )
    return message


async def send_pending(
    session: AsyncSession, settings: Settings, limit: int = 50
) -> dict[str, int]:
    """Job: send the committed review reminders (claimed with SKIP LOCKED), each version's
    marked sent or failed, never sent twice."""
    rows = (
        await session.execute(
            select(CrisisPlan, Territory)
            .join(Territory, Territory.id == CrisisPlan.territory_id)
            .where(CrisisPlan.review_mail_status == "pending")
            .order_by(CrisisPlan.created_at, CrisisPlan.id)
            .limit(limit)
            .with_for_update(of=CrisisPlan, skip_locked=True)
        )
    ).all()
    mails = ((plan, review_message(settings, plan, territory)) for plan, territory in rows)
    counts = await outgoing_mail.send_each(
        settings, mails, "crisis plan review", status_field="review_mail_status"
    )
    await session.flush()
    return counts
