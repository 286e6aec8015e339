"""Sign-in of the SAS platform's regulator accounts on the booking page (/agenda/...), and who
they book as. Services flush, never commit.

- A one-time link is sent to the account's e-mail: a 256-bit random token of which only the
  SHA-256 digest is stored, used once, valid SIGN_IN_LINK_MINUTES, at most
  SIGN_IN_LINKS_PER_WINDOW links per account in that time.
- Pro Santé Connect finds the account by its national identifier (IDNPS, `8` + RPPS).
- Either opens a page session kept here; signing out ends it, and so does deactivating the
  account (`end_sessions`, called when the platform sets `active=false`).
- A signed-in account books as its territory's SAS (`booking_caller`), with the account as
  the booking's operator, through the same booking service as the API."""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import now_utc
from app.directory.models import Regulator, RegulatorAccount, Territory, regulator_territory
from app.sas_bridge.sign_in_models import AccountSession, SignInLink
from app.security import REGULATOR, Caller

log = logging.getLogger(__name__)


def token_digest(token: str) -> str:
    # 256-bit random tokens: a fast hash is safe and allows an indexed lookup.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# E-mailed links -----------------------------------------------------------------------------


async def account_by_email(session: AsyncSession, email: str) -> RegulatorAccount | None:
    """The one active account with this address (case-insensitive); None when there is none,
    or when several share it (then no link can say which one signs in)."""
    rows = (
        await session.scalars(
            select(RegulatorAccount)
            .where(
                func.lower(RegulatorAccount.email) == email.strip().lower(),
                RegulatorAccount.active.is_(True),
            )
            .limit(2)
            .with_for_update()
        )
    ).all()
    if len(rows) > 1:
        log.warning("sign-in link refused: several active accounts share one address")
        return None
    return rows[0] if rows else None


async def issue_link(
    session: AsyncSession,
    email: str,
    next_path: str,
    *,
    minutes: int,
    per_window: int,
) -> tuple[RegulatorAccount, str] | None:
    """A new one-time link for the active account with this address: (account, token), or
    None when no link is to be sent (unknown or inactive address, or too many links asked
    for lately). The caller answers the same either way."""
    account = await account_by_email(session, email)  # locked: concurrent asks count right
    if account is None:
        return None
    now = now_utc()
    recent = await session.scalar(
        select(func.count())
        .select_from(SignInLink)
        .where(
            SignInLink.account_id == account.id,
            SignInLink.created_at > now - timedelta(minutes=minutes),
        )
    )
    if (recent or 0) >= per_window:
        log.warning("sign-in link refused: too many asked for", extra={"account": account.id})
        return None
    token = secrets.token_urlsafe(32)
    session.add(
        SignInLink(
            account_id=account.id,
            token_digest=token_digest(token),
            next_path=next_path,
            created_at=now,
            expires_at=now + timedelta(minutes=minutes),
        )
    )
    await session.flush()
    log.info("sign-in link issued", extra={"account": account.id})
    return account, token


async def link_target(session: AsyncSession, token: str) -> str | None:
    """The page a link that can still be used returns to; None for an unknown, used or
    expired link, or one whose account is no longer active. Uses nothing up."""
    return await session.scalar(
        select(SignInLink.next_path)
        .join(RegulatorAccount, RegulatorAccount.id == SignInLink.account_id)
        .where(
            SignInLink.token_digest == token_digest(token),
            SignInLink.used_at.is_(None),
            SignInLink.expires_at > now_utc(),
            RegulatorAccount.active.is_(True),
        )
    )


async def redeem_link(
    session: AsyncSession, token: str, *, hours: int
) -> tuple[AccountSession, str] | None:
    """Use the link up (once, whatever the concurrency: one conditional UPDATE) and open a
    session for its active account: (session, page to return to), else None."""
    now = now_utc()
    used = (
        await session.execute(
            update(SignInLink)
            .where(
                SignInLink.token_digest == token_digest(token),
                SignInLink.used_at.is_(None),
                SignInLink.expires_at > now,
            )
            .values(used_at=now)
            .returning(SignInLink.account_id, SignInLink.next_path)
        )
    ).one_or_none()
    if used is None:
        return None
    account = await session.get(RegulatorAccount, used.account_id)
    if account is None or not account.active:
        return None
    return await open_session(session, account, "email", hours=hours), used.next_path


# Pro Santé Connect --------------------------------------------------------------------------


def national_id_forms(value: str) -> list[str]:
    """The stored forms that may name one person: PSC's SubjectNameID is the IDNPS (`8` +
    RPPS for RPPS holders); the platform may have sent the account's id with or without the
    prefix."""
    value = value.strip()
    forms = [value]
    if len(value) == 11 and value.isdigit():
        forms.append(f"8{value}")
    elif len(value) == 12 and value.startswith("8") and value.isdigit():
        forms.append(value[1:])
    return forms


async def account_by_national_id(session: AsyncSession, value: str) -> RegulatorAccount | None:
    if not value.strip():
        return None
    return await session.scalar(
        select(RegulatorAccount).where(
            RegulatorAccount.national_id.in_(national_id_forms(value)),
            RegulatorAccount.active.is_(True),
        )
    )


# Sessions -----------------------------------------------------------------------------------


async def open_session(
    session: AsyncSession, account: RegulatorAccount, method: str, *, hours: int
) -> AccountSession:
    now = now_utc()
    opened = AccountSession(
        account_id=account.id,
        method=method,
        created_at=now,
        expires_at=now + timedelta(hours=hours),
    )
    session.add(opened)
    await session.flush()
    log.info("account session opened", extra={"account": account.id, "method": method})
    return opened


async def session_account(session: AsyncSession, session_id: uuid.UUID) -> RegulatorAccount | None:
    """The active account of a live session; None once it is ended, expired, or the account
    deactivated."""
    return await session.scalar(
        select(RegulatorAccount)
        .join(AccountSession, AccountSession.account_id == RegulatorAccount.id)
        .where(
            AccountSession.id == session_id,
            AccountSession.ended_at.is_(None),
            AccountSession.expires_at > now_utc(),
            RegulatorAccount.active.is_(True),
        )
    )


async def end_session(session: AsyncSession, session_id: uuid.UUID) -> None:
    await session.execute(
        update(AccountSession)
        .where(AccountSession.id == session_id, AccountSession.ended_at.is_(None))
        .values(ended_at=now_utc())
    )


async def end_sessions(session: AsyncSession, account_id: uuid.UUID, at: datetime) -> int:
    """End every page session of the account (it was deactivated); returns how many."""
    ended = await session.execute(
        update(AccountSession)
        .where(
            AccountSession.account_id == account_id,
            AccountSession.ended_at.is_(None),
            AccountSession.expires_at > at,
        )
        .values(ended_at=at)
        .returning(AccountSession.id)
    )
    return len(ended.all())


# Who books ----------------------------------------------------------------------------------


async def booking_regulator(session: AsyncSession, territory_id: uuid.UUID) -> uuid.UUID | None:
    """The SAS a platform account books for in a territory: the SAS linked to it (the
    territory's own department's first when several are), None when none is."""
    return await session.scalar(
        select(Regulator.id)
        .join(regulator_territory, regulator_territory.c.regulator_id == Regulator.id)
        .join(Territory, Territory.id == regulator_territory.c.territory_id)
        .where(Territory.id == territory_id)
        .order_by(
            case((Regulator.department == Territory.department, 0), else_=1),
            Regulator.created_at,
            Regulator.id,
        )
        .limit(1)
    )


async def booking_caller(
    session: AsyncSession, account_id: uuid.UUID, territory_id: uuid.UUID
) -> Caller | None:
    """The regulator Caller of a signed-in account on a practitioner's page: the territory's
    SAS, that territory only, and the account's id as the actor (no API key is involved, so
    the activity and access logs name the account). None when no SAS serves the territory."""
    regulator_id = await booking_regulator(session, territory_id)
    if regulator_id is None:
        return None
    return Caller(
        key_id=account_id,
        role=REGULATOR,
        regulator_id=regulator_id,
        territory_ids=frozenset([territory_id]),
    )
