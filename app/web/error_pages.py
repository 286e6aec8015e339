"""The HTML form of an error: a French page (or the sign-in page when the session is missing)
for the pages' addresses and for a browser lost outside the API. The application hands it to
app.errors at start-up (WEB_ERRORS)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from app.errors import AppError, ErrorRenderer
from app.web.auth import read_session
from app.web.render import WEB_PREFIXES, page, redirect

_ERROR_TITLES = {
    400: "Demande incorrecte",
    403: "Accès refusé",
    404: "Page introuvable",
    405: "Action impossible",
    409: "Action impossible dans l'état actuel",
    413: "Envoi trop volumineux",
    422: "Adresse ou formulaire invalide",
    429: "Trop de demandes",
    503: "Service momentanément indisponible",
}
_ERROR_TEXTS = {
    403: "Votre accès ne permet pas cette action. Si vous pensez que c'est une erreur, "
    "contactez la coordination de votre CPTS.",
    404: "Cette page n'existe pas, ou elle n'est pas accessible avec votre accès.",
    409: "L'action n'a pas été faite : la situation a changé entre-temps. Rechargez la page.",
    422: "Un paramètre de l'adresse ou du formulaire n'est pas valide.",
    429: "Vous avez fait beaucoup de demandes en peu de temps : patientez quelques secondes.",
    503: "Rien n'a été enregistré ; réessayez dans un instant.",
}


def error_page(request: Request, error: AppError) -> Response:
    """The page form of an error: a sign-in for a missing session, else a French message."""
    if error.status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return redirect(f"/connexion?next={quote(target)}")
    web_session = read_session(request)
    status = error.status
    title = _ERROR_TITLES.get(status, "Erreur")
    message = error.extra.get("page_message") or _ERROR_TEXTS.get(
        status, "Une erreur inattendue s'est produite ; elle a été enregistrée."
    )
    response = page(
        "message.html",
        status,
        web_session=web_session,
        role=web_session.menu_role if web_session else None,
        title=title,
        message=message,
        detail=error.detail if status in (409, 422) else None,
        agenda=request.url.path.startswith("/agenda"),
    )
    if error.headers:
        response.headers.update(error.headers)
    return response


# Paths whose clients are programs: they keep problem+json whatever they accept.
_API_PREFIXES = ("/v1/", "/health/", "/metrics", "/openapi.json", "/docs", "/redoc")


def shows_a_page(request: Request) -> bool:
    """The pages' addresses, and a person's browser on an address that is no API's (an
    unknown page, a typo)."""
    path = request.url.path
    if path == "/" or path.startswith(WEB_PREFIXES):
        return True
    return "text/html" in request.headers.get("accept", "") and not path.startswith(_API_PREFIXES)


WEB_ERRORS = ErrorRenderer(claims=shows_a_page, render=error_page)
