"""Where the signed link of a call for slots lands (/cabinet/appel-creneaux?jeton=…): a link
this app signed and not expired, opened by the called GP's practice (signed in first, then
brought back here), leads to the one-off slot form of that GP, prefilled at the hour of the
call's window where the SAS offer is thinnest (app.unmet_demand.call_gap), saying why. A
tampered or expired link gets a French page saying so; a link of another practice's GP is
refused."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.api.deps import SessionDep
from app.clock import now_utc
from app.directory.models import Practitioner, Territory
from app.errors import Forbidden, NotFound
from app.security import PRACTICE
from app.unmet_demand import call_gap, call_links
from app.unmet_demand.models import SlotCall
from app.web.auth import done, read_session, require_role, web_user
from app.web.french import count_of
from app.web.render import hour, page, when

router = APIRouter(prefix="/cabinet", include_in_schema=False)


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


def gap_reason(prefill: call_gap.Prefill, tz: ZoneInfo) -> str:
    """Why the form proposes this hour, in French: the free SAS slots of the territory in it
    (« aucun créneau SAS libre de 14:00 à 15:00 »), or the previous wording."""
    gap = prefill.gap
    if gap is None:
        return "Le formulaire est prérempli ; ajustez l'heure puis ajoutez-le."
    free = (
        "aucun créneau SAS libre"
        if gap.free_slots == 0
        else count_of(gap.free_slots, "créneau SAS libre")
    )
    return (
        f"Sur votre territoire, {free} de {hour(gap.start, tz)} à {hour(gap.end, tz)} "
        f"le {when(gap.start, tz, 'EEEE d MMMM')} : c'est l'heure de vos horaires où l'offre "
        "manque le plus. Le formulaire est prérempli à cette heure ; ajustez-la si besoin puis "
        "ajoutez le créneau."
    )


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
    tz = ZoneInfo(territory.timezone)
    proposed = await call_gap.prefill(session, call, gp, tz, now)
    start = proposed.start.astimezone(tz)
    end = (proposed.start + timedelta(minutes=proposed.minutes)).astimezone(tz)
    query = urlencode({"debut": f"{start:%Y-%m-%dT%H:%M}", "fin": f"{end:%Y-%m-%dT%H:%M}"})
    return done(
        request,
        f"/cabinet/medecins/{gp.id}/creneau?{query}",
        f"Appel à créneaux de votre CPTS : il restait {call.free_slots} créneau(x) SAS libre(s) "
        f"(seuil {call.floor}). {gap_reason(proposed, tz)}",
    )
