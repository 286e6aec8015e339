"""Where the signed link of a call for slots lands (/cabinet/appel-creneaux?jeton=…): a link
this app signed and not expired, opened by the called GP's practice (signed in first, then
brought back here), leads to the one-off slot form of that GP, prefilled. A tampered or
expired link gets a French page saying so; a link of another practice's GP is refused."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.api.deps import SessionDep
from app.clock import now_utc
from app.directory.models import Practitioner, Territory
from app.errors import Forbidden, NotFound
from app.security import PRACTICE
from app.unmet_demand import call_links
from app.unmet_demand.models import SlotCall
from app.web.auth import done, read_session, require_role, web_user
from app.web.render import page

router = APIRouter(prefix="/cabinet", include_in_schema=False)
SLOT_MINUTES = 30


def refused_page(status: int, title: str, message: str, request: Request) -> Response:
    """The French page of a link refused before sign-in (invalid, expired), or after."""
    current = read_session(request)
    return page(
        "message.html",
        status,
        web_session=current,
        role=current.menu_role if current else None,
        title=title,
        message=message,
    )


def suggested_start(now: datetime, tz: ZoneInfo) -> datetime:
    """The slot the form proposes: the first whole hour at least an hour from now, local."""
    local = (now + timedelta(hours=1)).astimezone(tz)
    return local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


@router.get(call_links.PATH.removeprefix("/cabinet"))
async def open_call_link(request: Request, session: SessionDep, jeton: str = "") -> Response:
    now = now_utc()
    try:
        call_id, practitioner_id = call_links.read(
            call_links.secret(request.app.state.settings), jeton, now
        )
    except call_links.LinkExpired:
        return refused_page(
            410,
            "Lien expiré",
            f"Ce lien d'appel à créneaux a expiré : il vaut {call_links.VALID_HOURS} heures. "
            "Vous pouvez toujours publier un créneau depuis l'agenda de votre cabinet.",
            request,
        )
    except call_links.LinkInvalid:
        return refused_page(
            400,
            "Lien invalide",
            "Ce lien d'appel à créneaux n'est pas valide : il a peut-être été coupé ou modifié. "
            "Ouvrez le lien complet du message reçu, ou publiez un créneau depuis l'agenda de "
            "votre cabinet.",
            request,
        )
    user = await web_user(request, session)  # not signed in: sign-in, then back here
    require_role(user, PRACTICE)
    call = await session.get(SlotCall, call_id)
    if call is None or call.practitioner_id != practitioner_id:
        raise NotFound("Call not found", page_message="Cet appel à créneaux n'existe plus.")
    gp = await session.get(Practitioner, practitioner_id)
    if gp is None:
        raise NotFound("Practitioner not found", page_message="Ce médecin n'existe plus.")
    if gp.practice_id != user.caller.practice_id:
        raise Forbidden(
            "This call is for another practice's GP",
            page_message="Ce lien concerne un médecin d'un autre cabinet : connectez-vous avec "
            "l'accès du cabinet du médecin appelé.",
        )
    territory = await session.get(Territory, gp.territory_id)
    assert territory is not None
    start = suggested_start(now, ZoneInfo(territory.timezone))
    query = urlencode(
        {
            "debut": f"{start:%Y-%m-%dT%H:%M}",
            "fin": f"{start + timedelta(minutes=SLOT_MINUTES):%Y-%m-%dT%H:%M}",
        }
    )
    return done(
        request,
        f"/cabinet/medecins/{gp.id}/creneau?{query}",
        f"Appel à créneaux de votre CPTS : il restait {call.free_slots} créneau(x) SAS libre(s) "
        f"(seuil {call.floor}). Le formulaire est prérempli ; ajustez l'heure puis ajoutez-le.",
    )
