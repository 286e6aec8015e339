"""The priority of an MT request: the fragility criteria met (ALD, aged 70 or more,
precarity), more criteria first. Declared criteria count once the coordinator confirms them."""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, and_, case, func, text

from app.medecin_traitant.models import MtRequest


def aged_70() -> ColumnElement[bool]:
    seventy = func.current_date() - text("interval '70 years'")
    return func.coalesce(MtRequest.patient_birth_date <= seventy, False)


MAX_PRIORITY = 3  # the three criteria below


def priority_expr() -> ColumnElement[int]:
    """Fragility criteria met: ALD, aged 70 or more, precarity. More criteria rank higher.
    Criteria a patient declared themselves count once the coordinator has confirmed them."""
    confirmed = MtRequest.criteria_to_check.is_(False)
    return (
        case((and_(MtRequest.ald, confirmed), 1), else_=0)
        + case((and_(MtRequest.precarity, confirmed), 1), else_=0)
        + case((aged_70(), 1), else_=0)
    )


def counted(r: MtRequest) -> tuple[bool, bool]:
    """ALD and precarity as they count for priority: not while still to be checked."""
    return r.ald and not r.criteria_to_check, r.precarity and not r.criteria_to_check


def is_70(birth_date: date | None, today: date) -> bool:
    if birth_date is None:
        return False
    years = (
        today.year
        - birth_date.year
        - ((today.month, today.day) < (birth_date.month, birth_date.day))
    )
    return years >= 70
