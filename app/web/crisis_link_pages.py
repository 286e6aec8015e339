"""Where a crisis call's signed link lands (/cabinet/crise?jeton=…): the called GP's practice,
signed in (else sign-in, then back here), sees the capacity its GP pledged in the plan,
prefilled and editable, and opens it with one button ("Ouvrir ces créneaux"): surge rules
and their crisis slots at once (app.crisis.capacity). A tampered or expired link, a link of
another practice's GP, an ended crisis: a French page saying so."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.api.deps import SessionDep
from app.clock import now_utc
from app.crisis import capacity, links
from app.crisis.calls import KIND_LABELS
from app.crisis.models import Crisis, CrisisCall
from app.crisis.plan_schemas import Pledge
from app.directory.models import Practitioner, Territory
from app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.security import PRACTICE
from app.signed_links import LinkExpired, LinkInvalid, secret
from app.web.auth import Form, FormDep, WebUser, done, require_role, show, web_user
from app.web.call_link_pages import refused_page
from app.web.forms import parse, service_errors

router = APIRouter(prefix="/cabinet", include_in_schema=False)
PATH = links.PATH.removeprefix("/cabinet")
MODALITIES = {
    "cabinet": "Au cabinet",
    "visite": "Visite à domicile",
    "teleconsultation": "Téléconsultation",
}
WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
# The hours proposed when the plan holds no pledge for the GP.
DEFAULT_PLEDGE = Pledge(
    modality="cabinet",
    weekdays=[1, 2, 3, 4, 5, 6, 7],
    start_time=time(14),
    end_time=time(18),
    slot_minutes=20,
)
MAX_PLEDGES = 10


@dataclass(frozen=True)
class Landing:
    """A link this app signed, for a call of a running crisis, opened by the GP's practice."""

    jeton: str
    call: CrisisCall
    crisis: Crisis
    gp: Practitioner
    tz: ZoneInfo
    user: WebUser


async def _call(request: Request, session: AsyncSession, jeton: str) -> Landing | Response:
    """The call a link names, for the practice signed in; or the French page refusing it."""
    try:
        call_id, practitioner_id = links.read(secret(request.app.state.settings), jeton, now_utc())
    except LinkExpired:
        return refused_page(
            410,
            "Lien expiré",
            "Ce lien d'appel de crise a expiré : il valait jusqu'à la fin prévue de la crise.",
            request,
        )
    except LinkInvalid:
        return refused_page(
            400,
            "Lien invalide",
            "Ce lien d'appel de crise n'est pas valide : il a "
            "peut-être été coupé ou modifié. Ouvrez le lien complet du message reçu.",
            request,
        )
    user = await web_user(request, session)  # not signed in: sign-in, then back here
    require_role(user, PRACTICE)
    call = await session.get(CrisisCall, call_id)
    if call is None or call.practitioner_id != practitioner_id:
        raise NotFound("Crisis call not found", page_message="Cet appel de crise n'existe plus.")
    if call.practice_id != user.caller.practice_id:
        raise Forbidden(
            "This call is for another practice's GP",
            page_message="Ce lien concerne un médecin d'un autre cabinet : connectez-vous avec "
            "l'accès du cabinet du médecin appelé.",
        )
    crisis = await session.get(Crisis, call.crisis_id)
    gp = await session.get(Practitioner, call.practitioner_id)
    assert crisis is not None and gp is not None
    territory = await session.get(Territory, crisis.territory_id)
    assert territory is not None
    tz = ZoneInfo(territory.timezone)
    if crisis.ended_at is not None:
        ended = crisis.ended_at.astimezone(tz)
        return refused_page(
            410,
            "Crise terminée",
            f"La crise « {crisis.title} » est terminée depuis "
            f"le {ended:%d/%m/%Y à %H:%M} : il n'y a plus de capacité de crise à "
            "ouvrir.",
            request,
        )
    return Landing(jeton, call, crisis, gp, tz, user)


def _values(pledges: list[Pledge]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for i, p in enumerate(pledges):
        values[f"p{i}.modality"] = p.modality
        values[f"p{i}.start_time"] = f"{p.start_time:%H:%M}"
        values[f"p{i}.end_time"] = f"{p.end_time:%H:%M}"
        values[f"p{i}.slot_minutes"] = str(p.slot_minutes)
        for d in p.weekdays:
            values[f"p{i}.weekdays.{d}"] = "true"
    return values


def _read(form: Form) -> tuple[list[Pledge], dict[str, str]]:
    pledges: list[Pledge] = []
    errors: dict[str, str] = {}
    for i in range(MAX_PLEDGES):
        if f"p{i}.start_time" not in form.values():
            break
        data = {
            "modality": form.get(f"p{i}.modality"),
            "weekdays": [int(d) for d in form.getlist(f"p{i}.weekdays") if d in "1234567" and d],
            "start_time": form.get(f"p{i}.start_time"),
            "end_time": form.get(f"p{i}.end_time"),
            "slot_minutes": form.get(f"p{i}.slot_minutes"),
        }
        pledge, found = parse(Pledge, data)
        for loc, message in found.items():
            name = loc.split(".")[0]
            if name == "_form" or name not in data:
                name, message = "end_time", "L'heure de fin doit suivre l'heure de début."
            if name == "weekdays":
                message = "Cochez au moins un jour."
            errors.setdefault(f"p{i}.{name}", message)
        if pledge is not None:
            pledges.append(pledge)
    if not pledges and not errors:
        errors["_form"] = "Le formulaire est incomplet : rouvrez le lien reçu."
    return pledges, errors


def _form_page(
    request: Request,
    at: Landing,
    values: dict[str, Any],
    count: int,
    errors: dict[str, str],
    status: int = 200,
    from_plan: bool = True,
) -> Response:
    crisis, tz = at.crisis, at.tz
    return show(
        request,
        at.user,
        "crisis_link.html",
        status,
        jeton=at.jeton,
        call=at.call,
        crisis=crisis,
        gp=at.gp,
        kind=KIND_LABELS.get(crisis.kind, crisis.kind),
        started=crisis.started_at.astimezone(tz),
        until=crisis.expected_end_at.astimezone(tz),
        opened=at.call.opened_at.astimezone(tz) if at.call.opened_at else None,
        values=values,
        count=count,
        errors=errors,
        first_error=next(iter(errors), None),
        modalities=MODALITIES,
        weekdays=WEEKDAYS,
        from_plan=from_plan,
    )


@router.get(PATH)
async def open_crisis_link(request: Request, session: SessionDep, jeton: str = "") -> Response:
    at = await _call(request, session, jeton)
    if isinstance(at, Response):
        return at
    pledges = await capacity.pledged(session, at.crisis, at.gp.id)
    shown = pledges or [DEFAULT_PLEDGE]
    return _form_page(request, at, _values(shown), len(shown), {}, from_plan=bool(pledges))


@router.post(PATH)
async def open_crisis_capacity(request: Request, session: SessionDep, form: FormDep) -> Response:
    at = await _call(request, session, form.get("jeton"))
    if isinstance(at, Response):
        return at
    pledges, errors = _read(form)
    count = sum(1 for i in range(MAX_PLEDGES) if f"p{i}.start_time" in form.values())
    values: dict[str, Any] = {**form.values()}
    for i in range(count):
        for d in form.getlist(f"p{i}.weekdays"):
            values[f"p{i}.weekdays.{d}"] = "true"
    if errors:
        return _form_page(request, at, values, count, errors, 422)
    try:
        opened = await capacity.open_capacity(
            session, at.call, pledges, now_utc(), at.user.caller.key_id
        )
    except Conflict:
        await session.rollback()
        message = {"_form": "Cette capacité de crise est déjà ouverte."}
        return _form_page(request, at, values, count, message, 409)
    except ValidationFailed as exc:
        await session.rollback()
        message = {"_form": "; ".join(service_errors(exc).values())}
        return _form_page(request, at, values, count, message, 422)
    skipped = (
        f" ; {opened.slots_skipped} chevauchaient des créneaux existants et n'ont pas été créés"
        if opened.slots_skipped
        else ""
    )
    return done(
        request,
        f"/cabinet/medecins/{at.gp.id}",
        f"Capacité de crise ouverte : {opened.slots_opened} créneau(x) visibles du SAS jusqu'au "
        f"{at.crisis.expected_end_at.astimezone(at.tz):%d/%m/%Y}{skipped}.",
    )
