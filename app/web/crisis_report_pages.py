"""The crisis dashboard and report for the ARS (French): the territory's crises, and for one
of them its slots opened per day against the plan's pledge (SVG chart and its table), the
bookings on them, the unmet requests in the communes concerned, the calls and the timeline;
printable (print stylesheet) and downloadable as CSV (docs/crisis-report.md)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.activity import export
from app.api.crisis_reports import (
    EVENTS,
    MAIL,
    Part,
    csv_response,
    visible_crisis,
)
from app.api.deps import SessionDep
from app.api.indicators import figures_territory
from app.clock import now_utc
from app.crisis.report import crisis_report, territory_crises
from app.directory import communes as referential
from app.security import ADMIN, COORDINATOR, DASHBOARD
from app.web.auth import UserDep, require_role, show
from app.web.charts import Series, bar_chart
from app.web.unmet_pages import REASONS

router = APIRouter(include_in_schema=False)
ROLES = (COORDINATOR, DASHBOARD, ADMIN)
KINDS = {
    "epidemic": "Épidémie",
    "heatwave": "Canicule",
    "ed_closure": "Fermeture d'un service d'urgences",
    "cyber_attack": "Cyberattaque",
    "other": "Autre situation",
}


def _delay(minutes: int | None) -> str:
    if minutes is None:
        return "—"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d} min" if hours else f"{rest} min"


@router.get("/coordination/rapports-de-crise")
async def crisis_list_page(
    request: Request, session: SessionDep, user: UserDep, territory_id: uuid.UUID | None = None
) -> Response:
    require_role(user, *ROLES)
    territory = await figures_territory(session, user.caller, territory_id)
    crises = await territory_crises(session, territory.id)
    return show(
        request,
        user,
        "crisis_reports.html",
        territory=territory,
        crises=crises,
        kinds=KINDS,
    )


@router.get("/coordination/crise/{crisis_id}/rapport")
async def crisis_report_page(
    request: Request, session: SessionDep, user: UserDep, crisis_id: uuid.UUID
) -> Response:
    require_role(user, *ROLES)
    crisis, territory = await visible_crisis(session, user.caller, crisis_id)
    now = now_utc()
    report = await crisis_report(session, crisis, territory, now)
    t = report.totals
    names = await referential.names(session, {*report.crisis.communes, *report.unmet_by_commune})
    chart = bar_chart(
        "Créneaux de crise ouverts par jour et engagement du plan",
        [f"{d.day.day:02d}/{d.day.month:02d}" for d in report.days],
        [Series("Créneaux ouverts", [d.slots_opened for d in report.days]),
         Series("Engagement du plan", [d.pledge for d in report.days])],
    )  # fmt: skip

    def share(n: int) -> str:
        return f"{round(100 * n / t.volunteers_called)} %" if t.volunteers_called else "—"

    figures: list[tuple[str, Any]] = [
        ("Créneaux de crise ouverts", t.slots_opened),
        ("Engagement du plan sur la période (créneaux)", t.pledge),
        ("Créneaux réservés", t.booked),
        ("Rendez-vous honorés", t.honoured),
        ("Rendez-vous non honorés", t.no_show),
        ("Réservations annulées", t.cancelled),
        ("Médecins volontaires appelés", t.volunteers_called),
        ("Appels suivis d'une ouverture de créneaux",
         f"{t.pledges_honoured} ({share(t.pledges_honoured)})"),
        ("Ouvertures dans les 2 h de la déclaration",
         f"{t.opened_within_2h} ({share(t.opened_within_2h)})"),
        ("Ouvertures dans les 24 h de la déclaration",
         f"{t.opened_within_24h} ({share(t.opened_within_24h)})"),
        ("Demandes non satisfaites dans les communes concernées", t.unmet),
        ("Recherches sans résultat (comptées à part)", t.empty_searches),
    ]  # fmt: skip
    return show(
        request,
        user,
        "crisis_report.html",
        report=report,
        crisis=report.crisis,
        tz=territory.timezone,
        territory=territory,
        kind=KINDS.get(report.crisis.kind, report.crisis.kind),
        communes=[f"{names.get(c, c)} ({c})" for c in report.crisis.communes],
        chart=chart,
        figures=figures,
        reasons=[(label, report.unmet_by_reason.get(code, 0))
                 for code, label in REASONS.items() if report.unmet_by_reason.get(code)],
        unmet_communes=[(names.get(code, code), code, n)
                        for code, n in report.unmet_by_commune.items()],
        calls=[(c, MAIL.get(c.mail_status, c.mail_status), _delay(c.minutes_after_call),
                _delay(c.minutes_after_declaration)) for c in report.calls],
        events=EVENTS,
        printed_at=now,
    )  # fmt: skip


@router.get("/coordination/crise/{crisis_id}/rapport.csv")
async def crisis_report_csv(
    session: SessionDep,
    user: UserDep,
    crisis_id: uuid.UUID,
    partie: Part = "days",
    dialect: export.Dialect = "excel",
) -> Response:
    """One table of the report, as the API gives it (`/v1/crises/{id}/report.csv`)."""
    require_role(user, *ROLES)
    crisis, territory = await visible_crisis(session, user.caller, crisis_id)
    report = await crisis_report(session, crisis, territory, now_utc())
    return csv_response(report, partie, dialect)
