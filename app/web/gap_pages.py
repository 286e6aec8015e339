"""The coordinator's gap map (/coordination/carences): SAS offer against SNP demand by
commune and hour of the week over a chosen period, with the unmet-demand figures, SVG
heatmaps and their data tables, and a CSV download. French for the reader."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app import csv_safety
from app.api.deps import SessionDep
from app.clock import now_utc
from app.directory import communes as referential
from app.directory.practice_service import communes
from app.security import COORDINATOR
from app.unmet_demand import figures, queries
from app.unmet_demand.queries import GapMap, Week
from app.web.auth import UserDep, WebUser, require_role, show
from app.web.charts import Series, bar_chart
from app.web.forms import local_day_start
from app.web.heatmap import DAYS, week_heatmap
from app.web.render import french_number
from app.web.unmet_pages import REASONS

router = APIRouter(prefix="/coordination", include_in_schema=False)
DEFAULT_DAYS = 28
MAX_DAYS = 400
CSV_COLUMNS = ("commune_insee", "commune", "jour", "heure", "creneaux_sas", "placees",
               "surnumeraires", "non_satisfaites", "recherches_sans_resultat", "demande",
               "manque")  # fmt: skip
WEEK_COLUMNS = ("semaine_iso", "lundi", "creneaux_sas", "placees", "non_satisfaites",
                "demandes_sas")  # fmt: skip


def _period(du: str, au: str, today: date) -> tuple[date, date, dict[str, str]]:
    """The chosen days (both included), defaulting to the last four weeks."""
    errors: dict[str, str] = {}
    first, last = today - timedelta(days=DEFAULT_DAYS - 1), today
    for name, text in (("du", du), ("au", au)):
        if not text:
            continue
        try:
            value = date.fromisoformat(text)
        except ValueError:
            errors[name] = "Date invalide (jj/mm/aaaa)."
            continue
        if not date(2000, 1, 1) <= value <= date(2100, 12, 31):
            errors[name] = "Date hors des limites."
        elif name == "du":
            first = value
        else:
            last = value
    if not errors and last < first:
        errors["au"] = "La fin doit suivre le début."
    elif not errors and (last - first).days >= MAX_DAYS:
        errors["au"] = f"La période dure au plus {MAX_DAYS} jours."
    return first, last, errors


async def _gap(
    session: AsyncSession, user: WebUser, du: str, au: str
) -> tuple[GapMap, date, date, dict[str, str], dict[str, str]]:
    territory_id, tz = await figures.territory_of(session, user.caller, None)
    zone = ZoneInfo(tz)
    today = now_utc().astimezone(zone).date()
    first, last, errors = _period(du, au, today)
    if errors:
        first, last = today - timedelta(days=DEFAULT_DAYS - 1), today
    start, end = local_day_start(first, zone), local_day_start(last + timedelta(days=1), zone)
    gap = await queries.gap_map(session, territory_id, tz, start, end)
    # Every commune by its name in the referential (those without a practice included).
    names = {c.insee: c.name or c.insee for c in await communes(session, user.caller)}
    names.update(await referential.names(session, gap.by_commune().keys()))
    return gap, first, last, errors, names


def _weeks(gap: GapMap, first: date, last: date) -> list[tuple[date, Week]]:
    """Every ISO week of the period (its Monday, local), with its counts or zeros."""
    monday = first - timedelta(days=first.weekday())
    out = []
    while monday <= last:
        out.append((monday, gap.weeks.get(monday, Week())))
        monday += timedelta(days=7)
    return out


def _ratio(n: int, d: int) -> str:
    return f"{french_number(100 * n / d, 0)} %" if d else "—"


@router.get("/carences")
async def gap_page(
    request: Request, session: SessionDep, user: UserDep, du: str = "", au: str = ""
) -> Response:
    require_role(user, COORDINATOR)
    gap, first, last, errors, names = await _gap(session, user, du, au)
    total = gap.total()
    placed = total.placed + total.overbooked
    by_hour = gap.by_hour_of_week()
    offer = {k: c.offer for k, c in by_hour.items()}
    demand = {k: c.demand for k, c in by_hour.items()}
    missing = {k: c.gap for k, c in by_hour.items()}
    worst_hours = sorted(
        ((k, c) for k, c in by_hour.items() if c.gap), key=lambda kc: (-kc[1].gap, kc[0])
    )[:10]
    by_commune = sorted(gap.by_commune().items(), key=lambda kc: (-kc[1].gap, -kc[1].unmet, kc[0]))
    summary = [
        ("Demandes SAS (placées + non satisfaites)", total.demand),
        ("Placées sur un créneau", total.placed),
        ("Placées en surnuméraire", total.overbooked),
        ("Non satisfaites (déclarées)", total.unmet),
        ("Part placée", _ratio(placed, total.demand)),
        ("Placées avec rendez-vous dans les 48 h", _ratio(gap.placed_within_48h, total.demand)),
        ("Recherches sans résultat (comptées à part)", total.empty_search),
        ("Créneaux SAS publiés", total.offer),
    ]
    weeks = _weeks(gap, first, last)
    weeks_svg = bar_chart(
        "Offre, demandes placées et non satisfaites par semaine",
        [f"{monday.day:02d}/{monday.month:02d}" for monday, _ in weeks],
        [Series("Créneaux SAS publiés", [w.offer for _, w in weeks]),
         Series("Demandes placées", [w.placed for _, w in weeks]),
         Series("Demandes non satisfaites", [w.unmet for _, w in weeks])],
    )  # fmt: skip
    context: dict[str, Any] = {
        "weeks": weeks,
        "weeks_svg": weeks_svg,
        "du": du if errors.get("du") else first.isoformat(),
        "au": au if errors.get("au") else last.isoformat(),
        "first": first,
        "last": last,
        "errors": errors,
        "first_error": next(iter(errors), None),
        "summary": summary,
        "days": DAYS,
        "offer": offer,
        "demand": demand,
        "missing": missing,
        "offer_svg": week_heatmap("Offre : créneaux SAS publiés par heure de la semaine", offer),
        "demand_svg": week_heatmap(
            "Demande : demandes SAS par heure de la semaine", demand, colour="orange"
        ),
        "missing_svg": week_heatmap(
            "Manque : demande au-delà de l'offre par heure de la semaine",
            missing,
            colour="orange",
        ),
        "worst_hours": worst_hours,
        "by_commune": by_commune,
        "names": names,
        "reasons": [(REASONS.get(r, r), n) for r, n in sorted(gap.reasons.items())],
    }
    return show(request, user, "carences.html", 422 if errors else 200, **context)


@router.get("/carences.csv")
async def gap_csv(
    request: Request, session: SessionDep, user: UserDep, du: str = "", au: str = ""
) -> Response:
    require_role(user, COORDINATOR)
    gap, first, last, _, names = await _gap(session, user, du, au)
    out = io.StringIO()
    writer = csv_safety.writer(out)
    writer.writerow(CSV_COLUMNS)
    for (commune, dow, hour), c in sorted(gap.cells.items()):
        writer.writerow(
            [commune, names.get(commune, ""), DAYS[dow - 1], hour, c.offer, c.placed,
             c.overbooked, c.unmet, c.empty_search, c.demand, c.gap]
        )  # fmt: skip
    filename = f"carences-{first.isoformat()}-{last.isoformat()}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/carences-semaines.csv")
async def weeks_csv(
    request: Request, session: SessionDep, user: UserDep, du: str = "", au: str = ""
) -> Response:
    """The trend by ISO week (local): offer, placed and unmet requests."""
    require_role(user, COORDINATOR)
    gap, first, last, _, _ = await _gap(session, user, du, au)
    out = io.StringIO()
    writer = csv_safety.writer(out)
    writer.writerow(WEEK_COLUMNS)
    for monday, w in _weeks(gap, first, last):
        iso = monday.isocalendar()
        writer.writerow([f"{iso.year}-W{iso.week:02d}", monday.isoformat(), w.offer, w.placed,
                         w.unmet, w.placed + w.unmet])  # fmt: skip
    filename = f"carences-semaines-{first.isoformat()}-{last.isoformat()}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
