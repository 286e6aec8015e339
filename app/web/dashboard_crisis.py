"""The dashboard's crisis-response section: the indicator year's crises declared, volunteers
called, pledges honoured, capacity opened within 2 h / 24 h of the declaration, crisis slots
opened and booked, summed from the monthly figures of `/v1/indicators` (docs/indicators.md)."""

from __future__ import annotations

from typing import Any

from app.activity.periods import ratio
from app.api.indicators import PeriodOut


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def crisis_section(months: list[PeriodOut]) -> list[dict[str, Any]]:
    """The figures, in French, for the template."""

    def total(name: str) -> int:
        return sum(int(m.crisis[name]) for m in months)

    called = total("volunteers_called")
    figures = [
        ("situations sanitaires exceptionnelles déclarées", total("crises_declared")),
        ("médecins volontaires appelés", called),
        ("part des appels suivis d'une ouverture de créneaux",
         _pct(ratio(total("pledges_honoured"), called))),
        ("part des appels ouverts dans les 2 h de la déclaration",
         _pct(ratio(total("opened_within_2h"), called))),
        ("part des appels ouverts dans les 24 h de la déclaration",
         _pct(ratio(total("opened_within_24h"), called))),
        ("créneaux de crise ouverts", total("slots_opened")),
        ("créneaux de crise réservés", total("slots_booked")),
    ]  # fmt: skip
    return [{"label": label, "value": value} for label, value in figures]
