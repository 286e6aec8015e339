"""Destructive page actions ask first: the first POST shows what will happen and a button
that sends the same form again with `confirme=oui` (on the server, no script)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from app.web.auth import Form, WebUser, show

CONFIRM_FIELD = "confirme"


def confirmed(form: Form) -> bool:
    return form.get(CONFIRM_FIELD) == "oui"


def ask_confirmation(
    request: Request, user: WebUser, *, title: str, message: str, button: str, back: str
) -> Response:
    """The confirmation page of the action posted to this very address (its query kept);
    `back` cancels."""
    query = request.url.query
    return show(
        request,
        user,
        "confirm.html",
        title=title,
        message=message,
        button=button,
        action=f"{request.url.path}?{query}" if query else request.url.path,
        back=back,
        confirm_field=CONFIRM_FIELD,
    )
