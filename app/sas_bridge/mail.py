"""E-mail sent by Créneau: the booking page's one-time sign-in links, through the SMTP server
of the settings (aiosmtplib). A message names no patient, ever."""

from __future__ import annotations

import uuid
from email.message import EmailMessage

from app import outgoing_mail
from app.config import Settings


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
    return await outgoing_mail.send(
        settings, sign_in_message(settings, to, url), "sign-in link", account=account_id
    )
