"""E-mail sent by Créneau: the booking page's one-time sign-in links, through the SMTP server
of the settings (aiosmtplib). A message names no patient, ever."""

from __future__ import annotations

import logging
import uuid
from email.message import EmailMessage

import aiosmtplib

from app.config import Settings

log = logging.getLogger(__name__)


def sign_in_message(settings: Settings, to: str, url: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = "Votre lien de connexion à Créneau"
    message.set_content(
        "Bonjour,\n\n"
        "Vous avez demandé à vous connecter à Créneau pour réserver un créneau de soins non "
        "programmés pour le SAS. Ouvrez ce lien dans les "
        f"{settings.sign_in_link_minutes} minutes :\n\n"
        f"{url}\n\n"
        "Il ne sert qu'une fois. Si vous n'avez rien demandé, ignorez ce message : personne "
        "ne peut se connecter sans ce lien.\n\n"
        "— Créneau\n"
    )
    return message


async def send_sign_in_link(settings: Settings, account_id: uuid.UUID, to: str, url: str) -> bool:
    """Send the link; a failure is logged (without the address) and reported as False: the
    visitor was already told, whatever happens, that a link may be on its way."""
    if not settings.smtp_host:
        log.warning("sign-in link not sent: SMTP_HOST is not set", extra={"account": account_id})
        return False
    try:
        await aiosmtplib.send(
            sign_in_message(settings, to, url),
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            start_tls=settings.smtp_starttls,
            use_tls=settings.smtp_tls,
            timeout=settings.smtp_timeout_seconds,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        log.error(
            "sign-in link not sent",
            extra={"account": account_id, "error": type(exc).__name__},
        )
        return False
    log.info("sign-in link sent", extra={"account": account_id})
    return True
