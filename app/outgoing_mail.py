"""The one way Créneau sends e-mail: through the SMTP server of the settings (aiosmtplib).
A failure is logged without the address and reported as False, never raised."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from email.message import EmailMessage
from typing import Any, Protocol

import aiosmtplib

from app.config import Settings

log = logging.getLogger(__name__)


async def send(settings: Settings, message: EmailMessage, what: str, **ref: Any) -> bool:
    """Send `message`; `what` names it in the logs ("call for slots"), `ref` its ids."""
    if not settings.smtp_host:
        log.warning(f"{what} not sent: SMTP_HOST is not set", extra=ref)
        return False
    try:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            start_tls=settings.smtp_starttls,
            use_tls=settings.smtp_tls,
            timeout=settings.smtp_timeout_seconds,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        log.error(f"{what} not sent", extra={**ref, "error": type(exc).__name__})
        return False
    log.info(f"{what} sent", extra=ref)
    return True


class Mailed(Protocol):
    """A row that carries one e-mail's fate (a call for slots, a crisis call, a crisis plan's
    review) in its column `status_field` (`mail_status` unless told)."""

    id: Any


async def send_each(
    settings: Settings,
    mails: Iterable[tuple[Mailed, EmailMessage]],
    what: str,
    status_field: str = "mail_status",
) -> dict[str, int]:
    """Send each row's message and mark the row sent or failed (the caller claimed the rows,
    with SKIP LOCKED, and flushes): a job's batch, never sent twice."""
    sent = failed = 0
    for row, message in mails:
        ok = await send(settings, message, what, call=row.id)
        setattr(row, status_field, "sent" if ok else "failed")
        sent, failed = sent + ok, failed + (not ok)
    return {"sent": sent, "failed": failed}
