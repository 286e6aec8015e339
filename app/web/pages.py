"""The indicators dashboard (French): headline figures, SVG charts and the CSV download.
Sign-in and sign-out are in app.web.auth."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.activity import export, indicators
from app.activity.mt_figures import DECLINE_REASONS, DECLINE_SIDES
from app.api.deps import SessionDep
from app.api.indicators import NowDep, csv_response, territory_indicators
from app.directory.models import Territory
from app.directory.practice_service import communes
from app.errors import NotFound
from app.security import ADMIN, COORDINATOR, DASHBOARD, Caller
from app.validators import local
from app.web.auth import UserDep, require_role, show
from app.web.charts import Series, bar_chart
from app.web.crisis_plan_reminder import plan_reminder
from app.web.dashboard_crisis import crisis_section
from app.web.dashboard_unmet import unmet_section

router = APIRouter(include_in_schema=False)
MONTHS = [
    "janv.", "févr.", "mars", "avr.", "mai", "juin",
    "juil.", "août", "sept.", "oct.", "nov.", "déc.",
]  # fmt: skip


async def _territory(
    session: SessionDep, caller: Caller, territory_id: uuid.UUID | None
) -> Territory | None:
    wanted = territory_id or caller.territory_id
    territory = await session.get(Territory, wanted) if wanted else None
    if territory is None or not caller.sees_territory(territory.id):
        return None
    return territory


def _fmt(value: Any, suffix: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".").replace(".", ",") + suffix
    return f"{value:,}".replace(",", "\u202f") + suffix


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def _figure(
    label: str, value: str, indicator: str | None, progress: dict[str, Any]
) -> dict[str, Any]:
    target = progress.get(indicator) if indicator else None
    percent = round((target["progress"] or 0) * 100) if target else None
    return {
        "label": label,
        "value": value,
        "target": _fmt(target["target"]) if target else None,
        "percent": percent,
        "percent_bar": min(percent, 100) if percent is not None else None,
    }


def _day(day: date, year: bool = False) -> str:
    return f"{day.day} {MONTHS[day.month - 1]}" + (f" {day.year}" if year else "")


def _span(start: date, end: date) -> str:
    """A period's label from its bounds ([start, end)): "30 nov." for a whole week, "30 nov.
    – 4 déc." for one clipped at today."""
    last = end - timedelta(days=1)
    return _day(start) if (end - start).days == 7 else f"{_day(start)} – {_day(last)}"


@router.get("/dashboard")
async def dashboard(
    request: Request,
    session: SessionDep,
    user: UserDep,
    now: NowDep,
    territory_id: uuid.UUID | None = None,
) -> Response:
    require_role(user, COORDINATOR, DASHBOARD, ADMIN)
    caller = user.caller
    territory = await _territory(session, caller, territory_id)
    if territory is None:
        raise NotFound("Territory not found", page_message="Précisez le territoire à afficher.")
    today = local(now, territory.timezone).date()
    tomorrow = today + timedelta(days=1)
    year_start = indicators.aci_year_start(today, territory.aci_signed_on)
    # Everything up to today included, nothing after: the label says "jusqu'au <today>".
    year = await territory_indicators(session, territory, "month", year_start, tomorrow, now)
    months = year.periods
    progress = {t["indicator"]: t for t in year.targets}
    monday = today - timedelta(days=today.weekday())
    weeks = (
        await territory_indicators(
            session, territory, "week", monday - timedelta(weeks=11), tomorrow, now
        )
    ).periods

    def total(section: str, name: str) -> float:
        return sum(float(getattr(p, section).get(name) or 0) for p in months)

    offered, taken = int(total("snp", "slots_offered")), int(total("snp", "slots_taken"))
    last = months[-1].mt
    snp_figures = [
        _figure("créneaux SNP proposés", _fmt(offered), "snp.slots_offered", progress),
        _figure(
            "dont mis à disposition du SAS",
            _fmt(int(total("snp", "slots_offered_sas"))),
            "snp.slots_offered_sas",
            progress,
        ),
        _figure(
            "dont internes à la CPTS", _fmt(int(total("snp", "slots_offered_cpts"))), None, {}
        ),
        _figure("heures proposées", _fmt(total("snp", "hours_offered")), "snp.hours_offered",
                progress),
        _figure("créneaux pris", _fmt(taken), None, progress),
        _figure("taux de remplissage", _pct(indicators.fill_rate(taken, offered)), None, {}),
        _figure(
            "réservations par le SAS",
            _fmt(int(total("snp", "slots_booked_by_sas"))),
            "snp.slots_booked_by_sas",
            progress,
        ),
        _figure(
            "rendez-vous dans les 48 h",
            _fmt(int(total("snp", "booked_within_48h"))),
            "snp.booked_within_48h",
            progress,
        ),
        _figure(
            "patients surnuméraires",
            _fmt(int(total("snp", "overbooked"))),
            "snp.overbooked",
            progress,
        ),
    ]  # fmt: skip
    mt_figures = [
        _figure("patients inscrits", _fmt(int(total("mt", "registered"))), "mt.registered",
                progress),
        _figure("patients rattachés à un médecin traitant", _fmt(int(total("mt", "attached"))),
                "mt.attached", progress),
        _figure("patients en attente", _fmt(last.get("waiting_at_end")), None, progress),
        _figure("jours d'attente (médiane des patients en attente)",
                _fmt(last.get("still_waiting_days_median")), None, progress),
        _figure("places restantes chez les médecins",
                _fmt(last.get("remaining_capacity_at_end")), None, progress),
        _figure("propositions refusées par le patient",
                _fmt(int(sum(m.mt["declined_by"]["patient"] for m in months))), None, progress),
        _figure("propositions refusées par le médecin",
                _fmt(int(sum(m.mt["declined_by"]["practitioner"] for m in months))), None,
                progress),
    ]  # fmt: skip
    refusals = [
        {
            "label": export.DECLINE_REASONS[code][0].upper() + export.DECLINE_REASONS[code][1:],
            "counts": [sum(m.mt["decline_reasons"][side][code] for m in months)
                       for side in DECLINE_SIDES],
        }
        for code in DECLINE_REASONS
    ]  # fmt: skip
    week_rows = [
        {
            "label": _span(w.period_start, w.period_end),
            "offered": w.snp["slots_offered"],
            "taken": w.snp["slots_taken"],
            "fill": _pct(w.snp["fill_rate"]),
            "booked": w.snp["slots_booked_by_sas"],
        }
        for w in weeks
    ]
    month_rows = [
        {
            "label": MONTHS[m.period_start.month - 1],
            "registered": m.mt["registered"],
            "attached": m.mt["attached"],
            "waiting": m.mt["waiting_at_end"],
            "median": _fmt(m.mt["waiting_days_median"]),
        }
        for m in months
    ]
    snp_chart = bar_chart(
        "Créneaux SNP proposés et pris par semaine",
        [_day(w.period_start) for w in weeks],
        [Series("Proposés", [r["offered"] for r in week_rows]),
         Series("Pris", [r["taken"] for r in week_rows])],
    )  # fmt: skip
    mt_chart = bar_chart(
        "Patients en attente d'un médecin traitant et délai médian par mois",
        [r["label"] for r in month_rows],
        [Series("En attente", [float(m.mt["waiting_at_end"]) for m in months]),
         Series("Délai médian (jours)", [m.mt["waiting_days_median"] or 0 for m in months])],
    )  # fmt: skip
    return show(
        request,
        user,
        "dashboard.html",
        territory=territory,
        year=year_start.year,
        since=_day(year_start, year=True),
        today=_day(today, year=True),
        snp_figures=snp_figures,
        mt_figures=mt_figures,
        weeks=week_rows,
        months=month_rows,
        snp_chart=snp_chart,
        mt_chart=mt_chart,
        refusals=refusals,
        refusal_sides=["Par le patient", "Par le médecin", "Sans préciser qui"],
        refusal_totals=[sum(m.mt["declined_by"][side] for m in months) for side in DECLINE_SIDES],
        crisis=crisis_section(months),
        unmet=unmet_section(
            months, {c.insee: c.name or c.insee for c in await communes(session, caller)}
        ),
        plan_reminder=await plan_reminder(session, caller, now),
    )


@router.get("/dashboard/indicateurs.csv")
async def dashboard_csv(
    session: SessionDep,
    user: UserDep,
    now: NowDep,
    territory_id: uuid.UUID | None = None,
    dialect: export.Dialect = "excel",
) -> Response:
    """The months of the dashboard's indicator year up to today, as the page shows them."""
    require_role(user, COORDINATOR, DASHBOARD, ADMIN)
    territory = await _territory(session, user.caller, territory_id)
    if territory is None:
        raise NotFound("Territory not found", page_message="Territoire introuvable.")
    today = local(now, territory.timezone).date()
    year_start = indicators.aci_year_start(today, territory.aci_signed_on)
    result = await territory_indicators(
        session, territory, "month", year_start, today + timedelta(days=1), now
    )
    return csv_response(result, dialect)
