"""The public médecin traitant pages, for patients and whoever helps them (no sign-in):
/medecin-traitant chooses the territory (its CPTS), /medecin-traitant/{territory_id} puts the
patient in that CPTS's queue with their consent, /medecin-traitant/suivi tells them where they
stand from their reference and birth date. Anti-abuse without tracking: no cookie, a honeypot
field, hourly limits per client address and per phone number (in memory, per worker), a daily
cap per territory. Nothing of the patient is logged."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.api.deps import SessionDep
from app.config import get_settings
from app.directory import communes
from app.directory.models import Territory
from app.errors import TooManyRequests
from app.medecin_traitant import self_registration as selfreg
from app.rate_limit import RateLimiter
from app.web.auth import Form, read_form
from app.web.commune_field import ListChoice, read_communes
from app.web.forms import nested, parse
from app.web.render import cpts_name, page

router = APIRouter(prefix="/medecin-traitant", include_in_schema=False)

_FIELDS = (
    "patient.family_name",
    "patient.given_name",
    "patient.birth_date",
    "patient.phone",
    "contact_email",
    "preferences.practitioner_gender",
)
HONEYPOT = "site_web"
_MESSAGES = {
    "contact_email": "Adresse e-mail invalide, ex. prenom.nom@exemple.fr.",
}


def _limiters(request: Request) -> dict[str, RateLimiter]:
    state = request.app.state
    limiters: dict[str, RateLimiter] | None = getattr(state, "mt_public_limiters", None)
    if limiters is None:
        settings = get_settings()
        limiters = state.mt_public_limiters = {
            "address": RateLimiter.hourly(settings.mt_public_per_hour),
            "phone": RateLimiter.hourly(settings.mt_public_per_hour),
            "status": RateLimiter.hourly(settings.mt_status_per_hour),
        }
    return limiters


def _check(request: Request, kind: str, value: str) -> Response | None:
    """None, or the French page of a 429 (with Retry-After)."""
    try:
        _limiters(request)[kind].check(uuid.uuid5(uuid.NAMESPACE_URL, f"mt-{kind}:{value}"))
    except TooManyRequests as exc:
        response = page(
            "mt_public_message.html",
            429,
            title="Trop de demandes",
            message="Trop de demandes en peu de temps depuis cette connexion ou pour ce numéro. "
            "Réessayez dans une heure, ou appelez la CPTS.",
        )
        response.headers.update(exc.headers or {})
        return response
    return None


def _address(request: Request) -> str:
    return request.client.host if request.client else "?"


# Choosing the territory -------------------------------------------------------------------


@router.get("")
async def choose(request: Request, session: SessionDep) -> Response:
    return page("mt_public_choose.html", territories=await selfreg.territories(session))


# Where the patient stands -----------------------------------------------------------------

STATUS_TEXT = {
    "waiting": "Votre demande est dans la file d'attente : la CPTS vous contactera dès qu'un "
    "médecin traitant peut vous être proposé.",
    "proposed": "Un médecin traitant vous a été proposé : la CPTS vous contacte (ou vous a "
    "contacté) pour en convenir.",
    "attached": "Vous avez un médecin traitant : votre demande est close.",
    "withdrawn": "Votre demande est close.",
}
_NOT_FOUND = "Aucune demande ne correspond à cette référence et à cette date de naissance."


@router.get("/suivi")
async def status_form(request: Request) -> Response:
    return page("mt_public_status.html", values={}, errors={}, first_error=None)


@router.post("/suivi")
async def status_lookup(request: Request, session: SessionDep) -> Response:
    limited = _check(request, "status", _address(request))
    if limited is not None:
        return limited
    form = await read_form(request)
    values = {"reference": form.get("reference"), "birth_date": form.get("birth_date")}
    errors: dict[str, str] = {}
    if not values["reference"]:
        errors["reference"] = "Ce champ est obligatoire."
    birth = None
    try:
        birth = date.fromisoformat(values["birth_date"])
    except ValueError:
        errors["birth_date"] = "Date de naissance invalide."
    if errors or birth is None:
        return page("mt_public_status.html", 422, values=values, errors=errors,
                    first_error=next(iter(errors)))  # fmt: skip
    status = await selfreg.status_of(session, values["reference"], birth)
    return page(
        "mt_public_status.html",
        values=values,
        errors={},
        first_error=None,
        result=STATUS_TEXT.get(status or "", _NOT_FOUND),
    )


# Registration -----------------------------------------------------------------------------


def _form_page(
    territory: Territory,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
    choices: dict[str, list[ListChoice]] | None = None,
) -> Response:
    errors = errors or {}
    return page("mt_public_form.html", status, t=territory, values=values, errors=errors,
                first_error=next(iter(errors), None), choices=choices or {},
                retention_days=selfreg.retention_days())  # fmt: skip


def _registered(territory: Territory, reference: str) -> Response:
    return page("mt_public_done.html", t=territory, reference=reference)


@router.get("/{territory_id}")
async def registration_form(
    request: Request, session: SessionDep, territory_id: uuid.UUID
) -> Response:
    territory = await selfreg.public_territory(session, territory_id)
    return _form_page(territory, {})


def _data(form: Form) -> dict[str, Any]:
    data = nested(form, *_FIELDS)
    data["ald"] = form.get("ald") == "true"
    data["precarity"] = form.get("precarity") == "true"
    return data


@router.post("/{territory_id}")
async def register(request: Request, session: SessionDep, territory_id: uuid.UUID) -> Response:
    limited = _check(request, "address", _address(request))
    if limited is not None:
        return limited
    territory = await selfreg.public_territory(session, territory_id)
    form = await read_form(request)
    if form.get(HONEYPOT):
        # A robot filled the field people do not see: the answer of a registration, nothing kept.
        return _registered(territory, selfreg.new_reference())
    data = _data(form)
    # A name, a postal code or an INSEE code; the territory's communes offered first.
    typed = await read_communes(
        session, form, ["commune"], prefer=await communes.territory_communes(session, territory.id)
    )
    if form.get("commune") and "commune" not in typed.errors:
        data["patient"]["commune_insee"] = typed.form.get("commune")
    body, errors = parse(selfreg.SelfRegistrationIn, data)
    errors = {name: _MESSAGES.get(name, message) for name, message in errors.items()}
    errors.update(typed.errors)
    if not form.get("commune"):
        errors["commune"] = "Ce champ est obligatoire."
    if form.get("consentement") != "oui":
        errors["consentement"] = "Votre accord est nécessaire pour enregistrer la demande."
    if body is None or errors:
        return _form_page(territory, typed.values(form), _ordered(errors), 422, typed.choices)
    limited = _check(request, "phone", body.patient.phone)
    if limited is not None:
        return limited
    try:
        reference = await selfreg.register_self(session, territory, body)
    except selfreg.DailyCapReached:
        return page(
            "mt_public_message.html",
            503,
            title="Inscriptions en ligne complètes pour aujourd'hui",
            message=f"La {cpts_name(territory.name)} a reçu aujourd'hui toutes les inscriptions en "
            "ligne qu'elle peut traiter. Réessayez demain, ou appelez la CPTS.",
        )
    return _registered(territory, reference)


_ORDER = (*_FIELDS[:4], "contact_email", "commune", "preferences.practitioner_gender")


def _ordered(errors: dict[str, str]) -> dict[str, str]:
    """Errors in the order of the page's fields, so the summary reads like the form."""
    rank = {name: i for i, name in enumerate((*_ORDER, "consentement"))}
    return dict(sorted(errors.items(), key=lambda item: rank.get(item[0], len(rank))))
