"""The indicators dashboard (French): headline figures, SVG charts and the CSV download.
Sign-in and sign-out are in app.web.auth."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.activity import indicators
from app.api.deps import SessionDep
from app.api.indicators import IndicatorsOut, PeriodOut, _targets, to_csv
from app.directory.models import Territory
from app.errors import NotFound
from app.security import ADMIN, COORDINATOR, DASHBOARD, Caller
from app.validators import local
from app.web.auth import UserDep, require_role, show
from app.web.charts import Series, bar_chart

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


def _sum(periods: list[indicators.Figures], section: str, name: str) -> float:
    return sum(float(getattr(p, section).get(name) or 0) for p in periods)


@router.get("/dashboard")
async def dashboard(
    request: Request, session: SessionDep, user: UserDep, territory_id: uuid.UUID | None = None
) -> Response:
    require_role(user, COORDINATOR, DASHBOARD, ADMIN)
    caller = user.caller
    territory = await _territory(session, caller, territory_id)
    if territory is None:
        raise NotFound("Territory not found", page_message="Précisez le territoire à afficher.")
    today = local(datetime.now().astimezone(), territory.timezone).date()
    year_start, year_end = date(today.year, 1, 1), date(today.year + 1, 1, 1)
    months = await indicators.compute(
        session, territory.id, territory.timezone, "month", year_start, year_end
    )
    progress = {
        t["indicator"]: t
        for t in indicators.progress(months, await _targets(session, territory.id))
    }
    weeks = await indicators.compute(
        session,
        territory.id,
        territory.timezone,
        "week",
        today - timedelta(weeks=11),
        today + timedelta(weeks=2),
    )
    past = [m for m in months if m.period_start <= today]
    offered, booked = _sum(past, "snp", "slots_offered"), _sum(past, "snp", "slots_booked_by_sas")
    attached = _sum(past, "mt", "attached")
    last = past[-1].mt if past else {}
    snp_figures = [
        _figure("créneaux SNP proposés", _fmt(int(offered)), "snp.slots_offered", progress),
        _figure(
            "heures proposées",
            _fmt(_sum(past, "snp", "hours_offered")),
            "snp.hours_offered",
            progress,
        ),
        _figure("réservations par le SAS", _fmt(int(booked)), "snp.slots_booked_by_sas", progress),
        _figure(
            "rendez-vous dans les 48 h",
            _fmt(int(_sum(past, "snp", "booked_within_48h"))),
            "snp.booked_within_48h",
            progress,
        ),
        _figure(
            "patients surnuméraires",
            _fmt(int(_sum(past, "snp", "overbooked"))),
            "snp.overbooked",
            progress,
        ),
        _figure("taux de remplissage", _pct(booked / offered if offered else None), None, progress),
    ]
    mt_figures = [
        _figure(
            "patients inscrits",
            _fmt(int(_sum(past, "mt", "registered"))),
            "mt.registered",
            progress,
        ),
        _figure(
            "patients rattachés à un médecin traitant", _fmt(int(attached)), "mt.attached", progress
        ),
        _figure("patients en attente", _fmt(last.get("waiting_at_end")), None, progress),
        _figure(
            "places restantes chez les médecins",
            _fmt(last.get("remaining_capacity_at_end")),
            None,
            progress,
        ),
    ]
    week_rows = [
        {
            "label": f"{w.period_start.day} {MONTHS[w.period_start.month - 1]}",
            "offered": w.snp["slots_offered"],
            "booked": w.snp["slots_booked_by_sas"],
            "fill": _pct(w.snp["fill_rate"]),
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
        for m in past
    ]
    snp_chart = bar_chart(
        "Créneaux SNP proposés et réservations SAS par semaine",
        [r["label"] for r in week_rows],
        [Series("Proposés", [r["offered"] for r in week_rows]),
         Series("Réservés", [r["booked"] for r in week_rows])],
    )  # fmt: skip
    mt_chart = bar_chart(
        "Patients en attente d'un médecin traitant et délai médian par mois",
        [r["label"] for r in month_rows],
        [Series("En attente", [float(m.mt["waiting_at_end"]) for m in past]),
         Series("Délai médian (jours)", [m.mt["waiting_days_median"] or 0 for m in past])],
    )  # fmt: skip
    return show(
        request,
        user,
        "dashboard.html",
        territory=territory,
        year=today.year,
        today=f"{today.day} {MONTHS[today.month - 1]} {today.year}",
        snp_figures=snp_figures,
        mt_figures=mt_figures,
        weeks=week_rows,
        months=month_rows,
        snp_chart=snp_chart,
        mt_chart=mt_chart,
    )


@router.get("/dashboard/indicateurs.csv")
async def dashboard_csv(
    session: SessionDep, user: UserDep, territory_id: uuid.UUID | None = None
) -> Response:
    require_role(user, COORDINATOR, DASHBOARD, ADMIN)
    territory = await _territory(session, user.caller, territory_id)
    if territory is None:
        raise NotFound("Territory not found", page_message="Territoire introuvable.")
    year = date.today().year
    figures = await indicators.compute(
        session, territory.id, territory.timezone, "month", date(year, 1, 1), date(year + 1, 1, 1)
    )
    result = IndicatorsOut(
        territory_id=territory.id, timezone=territory.timezone, granularity="month",
        from_=date(year, 1, 1), to=date(year + 1, 1, 1),
        periods=[PeriodOut(**f.__dict__) for f in figures],
    )  # fmt: skip
    return Response(
        to_csv(result),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="indicateurs.csv"'},
    )
