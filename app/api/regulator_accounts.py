"""Regulator accounts of the national SAS platform, as the CPTS sees them."""

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from app.api.deps import CallerDep, SessionDep
from app.directory.models import RegulatorAccount
from app.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, fetch_page
from app.sas_bridge.accounts import account_identifier
from app.scheduling.booking_models import Booking
from app.security import ADMIN, COORDINATOR

router = APIRouter(prefix="/v1/regulator-accounts", tags=["SAS platform"])


class RegulatorAccountOut(BaseModel):
    id: str
    identifier_system: str
    identifier: str
    family_name: str
    given_name: str | None
    email: str | None
    active: bool


@router.get("", response_model=Page[RegulatorAccountOut])
async def list_accounts(
    session: SessionDep,
    caller: CallerDep,
    active: bool | None = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[RegulatorAccountOut]:
    """Accounts created by the SAS platform: every one for an admin; for a coordinator, those
    that have booked in its territory."""
    caller.require(ADMIN, COORDINATOR)
    stmt = select(RegulatorAccount)
    if caller.role == COORDINATOR:
        # Accounts carry no territory: a coordinator sees those that have booked in its
        # territory (as operators), not every regulator's e-mail of the country.
        acted = select(Booking.operator_account_id).where(
            Booking.territory_id.in_(caller.territory_ids),
            Booking.operator_account_id.is_not(None),
        )
        stmt = stmt.where(RegulatorAccount.id.in_(acted))
    if active is not None:
        stmt = stmt.where(RegulatorAccount.active.is_(active))
    rows, next_cursor = await fetch_page(
        session,
        stmt,
        sort_col=RegulatorAccount.created_at,
        id_col=RegulatorAccount.id,
        cursor=cursor,
        limit=limit,
    )
    items = []
    for account in rows:
        system, value = account_identifier(account)
        items.append(
            RegulatorAccountOut(
                id=str(account.id),
                identifier_system=system,
                identifier=value,
                family_name=account.family_name,
                given_name=account.given_name,
                email=account.email,
                active=account.active,
            )
        )
    return Page(items=items, next_cursor=next_cursor)
