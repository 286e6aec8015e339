"""Sign-in of the SAS platform's regulator accounts on the booking page: one-time links sent
by e-mail (only a digest of the token is kept) and the page sessions they open, kept on the
server so that signing out or deactivating the account ends them at once."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, CreatedAtMixin, IdMixin

SIGN_IN_METHODS = ("email", "psc")


class SignInLink(IdMixin, CreatedAtMixin, Base):
    """A one-time sign-in link: the SHA-256 digest of its random token, single use, short."""

    __tablename__ = "sign_in_link"
    __table_args__ = (Index("ix_sign_in_link_account_created", "account_id", "created_at"),)

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("regulator_account.id", ondelete="CASCADE")
    )
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    # The page to return to once signed in (a path of this site).
    next_path: Mapped[str] = mapped_column(String(2000))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AccountSession(IdMixin, CreatedAtMixin, Base):
    """A signed-in regulator account on the booking page; the cookie holds its id."""

    __tablename__ = "account_session"
    __table_args__ = (
        CheckConstraint(f"method IN {SIGN_IN_METHODS}", name="method"),
        Index("ix_account_session_account", "account_id"),
    )

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("regulator_account.id", ondelete="CASCADE")
    )
    method: Mapped[str] = mapped_column(String(8))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
