"""The regulator accounts of the national SAS platform as people of the directory: the
identifier systems that name them, and the account that operates a booking."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory.models import RegulatorAccount
from app.errors import ValidationFailed

# The national health professional identifier (IDNPS, e.g. 8 + RPPS) and the SAS platform's
# technical identifier (INTRN, a UUID).
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
SAS_SYSTEM = "urn:oid:1.2.250.1.213.3.6"


async def operator_account(session: AsyncSession, system: str, value: str) -> RegulatorAccount:
    """The active account naming a booking's operator, else a 422 on `operator`."""
    column = {RPPS_SYSTEM: RegulatorAccount.national_id, SAS_SYSTEM: RegulatorAccount.technical_id}
    if system not in column:
        raise ValidationFailed.field(["body", "operator", "system"], "unknown identifier system")
    account = await session.scalar(select(RegulatorAccount).where(column[system] == value))
    if account is None:
        raise ValidationFailed.field(["body", "operator"], "unknown regulator account")
    if not account.active:
        raise ValidationFailed.field(["body", "operator"], "this regulator account is inactive")
    return account
