"""What the practice's pages share: who may publish, the zone of the GP a page is for, a rule
in French words, and the refusal of slots that overlap a GP's others."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict
from app.scheduling import publishers
from app.scheduling.models import AvailabilityRule
from app.security import ADMIN, COORDINATOR, PRACTICE
from app.web.auth import WebUser
from app.web.french import count_of
from app.web.render import when

PUBLISHERS = (PRACTICE, COORDINATOR, ADMIN)
WEEKDAYS = [("MO", "lundi"), ("TU", "mardi"), ("WE", "mercredi"), ("TH", "jeudi"),
            ("FR", "vendredi"), ("SA", "samedi"), ("SU", "dimanche")]  # fmt: skip


async def publishing_zone(
    session: AsyncSession, practitioner_id: uuid.UUID, user: WebUser
) -> ZoneInfo:
    _, tz = await publishers.publishing_practitioner(session, user.caller, practitioner_id)
    return tz


def weekly_days(rrule: str) -> tuple[list[str], str] | None:
    """The days and interval of a simple weekly rule, to fill the form's checkboxes."""
    parts = dict(p.split("=", 1) for p in rrule.upper().split(";") if "=" in p)
    if parts.get("FREQ") != "WEEKLY" or set(parts) - {"FREQ", "BYDAY", "INTERVAL"}:
        return None
    days = [d for d in parts.get("BYDAY", "").split(",") if d in dict(WEEKDAYS)]
    return (days, parts.get("INTERVAL", "1")) if days else None


def describe_rule(rule: AvailabilityRule) -> str:
    weekly = weekly_days(rule.rrule)
    if weekly is None:
        when_text = f"règle {rule.rrule}"
    else:
        days, interval = weekly
        names = ", ".join(name for code, name in WEEKDAYS if code in days)
        when_text = f"chaque {names}" if interval == "1" else f"{names}, une semaine sur {interval}"
    until = f" jusqu'au {rule.valid_until.strftime('%d/%m/%Y')}" if rule.valid_until else ""
    return (
        f"{when_text}, de {rule.start_time:%H:%M} à {rule.end_time:%H:%M}, "
        f"créneaux de {rule.slot_minutes} min, depuis le {rule.valid_from:%d/%m/%Y}{until}"
    )


def overlap_message(error: Conflict, tz: ZoneInfo) -> str:
    overlapping = error.extra.get("overlapping") or []
    if not overlapping:
        return "Ces créneaux chevauchent des créneaux existants de ce médecin."
    first = datetime.fromisoformat(overlapping[0]["start"])
    return (
        f"Refusé : {count_of(len(overlapping), 'créneau existant')} de ce médecin "
        f"{'sont' if len(overlapping) > 1 else 'est'} sur ces horaires, "
        f"le premier le {when(first, tz)}. Modifiez les horaires ou terminez l'autre règle."
    )
