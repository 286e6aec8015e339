"""The report of a crisis (JSON and CSV) for the coordinator, the dashboard and the ARS
(docs/crisis-report.md). Declaring, ending and listing crises: app.api.crises."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from app.activity import export
from app.api.deps import CallerDep, SessionDep
from app.clock import now_utc
from app.crisis.models import Crisis
from app.crisis.report import crisis_report
from app.crisis.report_schemas import CrisisReport, CrisisSummary
from app.directory.models import Territory
from app.errors import NotFound
from app.security import ADMIN, COORDINATOR, DASHBOARD, Caller
from app.validators import local

router = APIRouter(tags=["crisis"])
Part = Literal["days", "calls", "timeline"]

# The CSV's French headers (the `excel` dialect); `raw` keeps these keys.
LABELS = {
    "day": "Jour",
    "slots_opened": "Créneaux de crise ouverts (jour du créneau)",
    "slots_created": "Créneaux de crise créés ce jour",
    "pledge": "Engagement du plan (créneaux)",
    "booked": "Créneaux réservés",
    "honoured": "Rendez-vous honorés",
    "no_show": "Rendez-vous non honorés",
    "cancelled": "Réservations annulées",
    "unmet": "Demandes non satisfaites (communes concernées)",
    "practitioner": "Médecin",
    "practice": "Cabinet",
    "sent_at": "Appelé le",
    "mail_status": "Courriel",
    "opened_at": "Ouvert le",
    "minutes_after_call": "Délai depuis l'appel (minutes)",
    "minutes_after_declaration": "Délai depuis la déclaration (minutes)",
    "at": "Date et heure",
    "event": "Étape",
    "slots": "Créneaux",
}
COLUMNS: dict[str, list[str]] = {
    "days": ["day", "slots_opened", "slots_created", "pledge", "booked", "honoured", "no_show",
             "cancelled", "unmet"],
    "calls": ["practitioner", "practice", "sent_at", "mail_status", "opened_at",
              "minutes_after_call", "minutes_after_declaration", "slots_opened"],
    "timeline": ["at", "event", "practitioner", "slots"],
}  # fmt: skip
EVENTS = {
    "started": "début de la crise",
    "declared": "déclaration",
    "called": "appel du médecin",
    "capacity_opened": "ouverture de créneaux",
    "ended": "fin de la crise",
}
MAIL = {"pending": "en cours", "sent": "envoyé", "failed": "échec", "none": "sans courriel"}


async def visible_crisis(
    session: SessionDep, caller: Caller, crisis_id: uuid.UUID
) -> tuple[Crisis, Territory]:
    caller.require(ADMIN, COORDINATOR, DASHBOARD)
    crisis = await session.get(Crisis, crisis_id)
    if crisis is None or not caller.sees_territory(crisis.territory_id):
        raise NotFound("Crisis not found")
    territory = await session.get(Territory, crisis.territory_id)
    assert territory is not None  # a crisis's territory cascades its deletion
    return crisis, territory


def _local(out: CrisisSummary, tz: str) -> CrisisSummary:
    return out.model_copy(
        update={
            name: local(getattr(out, name), tz)
            for name in ("started_at", "expected_end_at", "declared_at", "ended_at")
            if getattr(out, name) is not None
        }
    )


@router.get("/v1/crises/{crisis_id}/report", response_model=CrisisReport)
async def get_report(crisis_id: uuid.UUID, session: SessionDep, caller: CallerDep) -> CrisisReport:
    """A crisis by local day (slots opened against the plan's pledge, bookings on them,
    unmet requests in the communes concerned), its calls and its timeline."""
    crisis, territory = await visible_crisis(session, caller, crisis_id)
    report = await crisis_report(session, crisis, territory, now_utc())
    return report.model_copy(update={"crisis": _local(report.crisis, territory.timezone)})


def report_rows(report: CrisisReport, part: Part, dialect: export.Dialect) -> list[dict[str, Any]]:
    """One of the report's tables as CSV rows: its days, its calls or its timeline."""
    french = dialect == "excel"
    if part == "days":
        return [d.model_dump() for d in report.days]
    if part == "calls":
        return [
            {**c.model_dump(), "mail_status": MAIL.get(c.mail_status, c.mail_status) if french
             else c.mail_status}
            for c in report.calls
        ]  # fmt: skip
    return [
        {**e.model_dump(), "event": EVENTS[e.event] if french else e.event} for e in report.timeline
    ]


@router.get(
    "/v1/crises/{crisis_id}/report.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_report_csv(
    crisis_id: uuid.UUID,
    session: SessionDep,
    caller: CallerDep,
    part: Annotated[Part, Query(description="`days` (default), `calls` or `timeline`")] = "days",
    dialect: Annotated[
        export.Dialect,
        Query(description="`excel` (French, `;`, BOM) or `raw` (`,`, field names)"),
    ] = "excel",
) -> Response:
    """One table of the report as CSV, in the indicators' dialects."""
    crisis, territory = await visible_crisis(session, caller, crisis_id)
    report = await crisis_report(session, crisis, territory, now_utc())
    return csv_response(report, part, dialect)


def csv_response(report: CrisisReport, part: Part, dialect: export.Dialect) -> Response:
    """One of the report's tables as a CSV download (the API's and the page's)."""
    body = export.to_csv(
        report_rows(report, part, dialect), dialect, labels=LABELS, columns=COLUMNS[part]
    )
    filename = f"rapport-crise-{report.first_day.isoformat()}-{part}.csv"
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
