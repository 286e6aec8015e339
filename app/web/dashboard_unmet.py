"""The dashboard's unmet-demand section: the indicator year's SAS requests (placed + unmet),
the shares placed, unmet requests by reason, commune and hour, calls for slots and the slots
they produced, summed from the monthly figures of `/v1/indicators` (docs/indicators.md)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from app.activity.periods import ratio
from app.api.indicators import PeriodOut
from app.web.unmet_pages import REASONS


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def _sum(months: list[PeriodOut], name: str) -> Counter[str]:
    total: Counter[str] = Counter()
    for m in months:
        total.update(m.unmet[name])
    return total


def unmet_section(months: list[PeriodOut], names: dict[str, str]) -> dict[str, Any]:
    """The figures and the three tables, in French, for the template."""

    def total(name: str) -> int:
        return sum(int(m.unmet[name]) for m in months)

    requests, placed = total("sas_requests"), total("placed")
    figures = [
        ("demandes SAS (placées + non satisfaites)", requests),
        ("demandes placées", placed),
        ("part des demandes placées", _pct(ratio(placed, requests))),
        ("part placée avec rendez-vous dans les 48 h",
         _pct(ratio(total("placed_within_48h"), requests))),
        ("demandes non satisfaites (déclarées)", total("unmet")),
        ("recherches sans résultat (comptées à part)", total("empty_searches")),
        ("appels à créneaux envoyés aux médecins", total("calls_sent")),
        ("créneaux publiés dans les 24 h d'un appel", total("slots_from_calls")),
    ]  # fmt: skip
    reasons = _sum(months, "unmet_by_reason")
    communes = _sum(months, "unmet_by_commune")
    hours = _sum(months, "unmet_by_hour")
    return {
        "figures": [{"label": label, "value": value} for label, value in figures],
        "by_reason": [(label, reasons[code]) for code, label in REASONS.items() if reasons[code]],
        "by_commune": [
            (names.get(code, code), code, n)
            for code, n in sorted(communes.items(), key=lambda cn: (-cn[1], cn[0]))
            if n
        ],
        "by_hour": [(f"{int(h)} h", n) for h, n in sorted(hours.items()) if n],
    }
