"""From an HTML form to the API's own input models, and from their errors to French messages
next to each field. Form fields are named by the model path (`patient.phone`), so an error's
location is the field's name; the models (and so every rule on input) are the API's."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from app.bounds import DATE_RANGE_MSG, check_instant
from app.errors import AppError, Forbidden, NotFound, SlotUnavailable
from app.scheduling.booking_schemas import BookingIn
from app.scheduling.rules import local_instant
from app.web.auth import Form

M = TypeVar("M", bound=BaseModel)

_BY_TYPE = {
    "missing": "Ce champ est obligatoire.",
    "string_too_short": "Trop court.",
    "string_too_long": "Ce texte est trop long.",
    "string_pattern_mismatch": "Le format n'est pas valide.",
    "date_parsing": "Date invalide.",
    "date_from_datetime_parsing": "Date invalide.",
    "date_type": "Date invalide.",
    "time_parsing": "Heure invalide (hh:mm).",
    "time_type": "Heure invalide (hh:mm).",
    "datetime_parsing": "Date et heure invalides.",
    "datetime_from_date_parsing": "Date et heure invalides.",
    "timezone_aware": "Date et heure invalides.",
    "int_parsing": "Un nombre entier est attendu.",
    "int_type": "Un nombre entier est attendu.",
    "float_parsing": "Un nombre est attendu.",
    "greater_than_equal": "Valeur trop petite.",
    "greater_than": "Valeur trop petite.",
    "less_than_equal": "Valeur trop grande.",
    "literal_error": "Choisissez une des valeurs proposées.",
    "uuid_parsing": "Choisissez une des valeurs proposées.",
    "bool_parsing": "Choisissez oui ou non.",
    "too_long": "Trop de valeurs.",
}
_BY_FIELD = {
    "patient.phone": "Numéro de téléphone français invalide.",
    "patient.ins": "INS invalide : 15 caractères (NIR et clé de contrôle).",
    "patient.birth_date": "Date de naissance invalide (ni future, ni avant 1900).",
    "patient.commune_insee": "Code INSEE invalide : 5 caractères, ex. 15014.",
    "commune_insee": "Code INSEE invalide : 5 caractères, ex. 15014.",
    "rpps": "Le RPPS compte 11 chiffres.",
    "finess": "Le FINESS compte 9 caractères.",
    "postal_code": "Le code postal compte 5 chiffres.",
    "siret": "Le SIRET compte 14 chiffres.",
    "cabinet_id": "RPPS rang (4 suivi de 12 à 15 chiffres) ou ADELI rang (0 suivi du numéro ADELI "
    "et du rang).",
    "booking_url": "Adresse de page invalide : elle commence par https://.",
    "phone": "Numéro de téléphone français invalide.",
    "lat": "Latitude invalide : un nombre entre -90 et 90, ex. 44.9264.",
    "lon": "Longitude invalide : un nombre entre -180 et 180, ex. 2.4396.",
}
_BY_MESSAGE = {
    "end must be after start": "La fin doit être après le début.",
    "a slot lasts at most 12 hours": "Un créneau dure au plus 12 heures.",
    "an unavailability lasts at most a year": "Une absence dure au plus un an.",
    "must be in the future": "Doit être dans le futur.",
    "must be on or after valid_from": "La fin de validité doit suivre le début.",
    "patient is required unless hold is true": "Les informations du patient sont nécessaires.",
    DATE_RANGE_MSG: "La date doit être comprise entre 2000 et 2100.",
}


def french(loc: str, kind: str, message: str) -> str:
    if message.startswith("required for a"):
        return "Ce champ est obligatoire pour ce rôle."
    if message.startswith("not allowed for a"):
        return "Ce champ ne s'applique pas à ce rôle."
    if message.startswith("unknown "):
        return "Choisissez une des valeurs proposées."
    if message in _BY_MESSAGE:
        return _BY_MESSAGE[message]
    for known, text in _BY_MESSAGE.items():
        if message.endswith(known):
            return text
    if loc in _BY_FIELD and kind != "missing":
        return _BY_FIELD[loc]
    return _BY_TYPE.get(kind, f"Valeur refusée : {message}")


def _loc(parts: tuple[Any, ...] | list[Any]) -> str:
    named = [str(p) for p in parts if p not in ("body", "query")]
    return ".".join(named) or "_form"


def validation_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for err in exc.errors():
        loc = _loc(err["loc"])
        message = str(err.get("msg", "")).removeprefix("Value error, ")
        errors.setdefault(loc, french(loc, err["type"], message))
    return errors


def service_errors(error: AppError) -> dict[str, str]:
    """A service's 422 (a rule on one field) as a French message next to that field."""
    out: dict[str, str] = {}
    for item in error.errors or [{"loc": [], "msg": error.detail}]:
        loc = _loc(item.get("loc", []))
        out.setdefault(loc, french(loc, "value_error", str(item.get("msg", ""))))
    return out


def parse(model: type[M], data: dict[str, Any]) -> tuple[M | None, dict[str, str]]:
    try:
        return model.model_validate(data), {}
    except ValidationError as exc:
        return None, validation_errors(exc)


def nested(form: Form, *names: str) -> dict[str, Any]:
    """The named fields, blanks left out (so optional fields are absent, and required ones
    'missing'), dotted names nested: `patient.phone` -> {"patient": {"phone": ...}}."""
    out: dict[str, Any] = {}
    for name in names:
        value = form.get(name)
        target = out
        *parents, leaf = name.split(".")
        # A group left blank is still there, so that each of its required fields is reported
        # by name (next to its input) rather than the group as a whole.
        for parent in parents:
            target = target.setdefault(parent, {})
        if value != "":
            target[leaf] = value
    return out


PATIENT_FIELDS = tuple(
    f"patient.{n}" for n in ("family_name", "given_name", "birth_date", "phone", "ins",
                             "commune_insee")
)  # fmt: skip


def booking_form(form: Form, **extra: Any) -> tuple[BookingIn | None, dict[str, str], str]:
    """The slot booking form (regulator and agenda pages) read by the API's model, its errors,
    and its one-time token, which is the booking's Idempotency-Key."""
    data = nested(form, "slot_id", "sas_case_ref", "reason", *PATIENT_FIELDS)
    body, errors = parse(BookingIn, {**data, "hold": False, **extra})
    if "slot_id" in errors:
        errors["slot_id"] = "Choisissez un créneau dans la liste."
    token = form.get("jeton")
    if not re.fullmatch(r"[0-9a-f-]{36}", token):
        errors["_form"] = "Le formulaire est incomplet : rechargez la page."
    return body, errors, token


def not_booked(error: AppError, reused: str, taker: str = "un autre régulateur") -> str:
    """Why the chosen slot was not booked, above the remaining ones (the patient stays)."""
    if isinstance(error, SlotUnavailable):
        why = f"Ce créneau vient d'être pris par {taker}."
    elif isinstance(error, NotFound | Forbidden):
        why = "Ce créneau n'est plus proposé."
    else:  # the form's token already booked another slot (back button, new choice)
        why = reused
    return (
        f"{why} Choisissez un autre créneau ci-dessous : les informations du patient sont "
        "conservées."
    )


def local_datetime(value: str, tz: ZoneInfo) -> datetime | str:
    """A `datetime-local` input (wall-clock time of the territory) as an aware instant,
    DST-correct like the rules; left as given when unreadable, for the model to refuse."""
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        return value
    if naive.tzinfo is not None:
        return naive
    try:
        check_instant(naive)
    except ValueError:
        # Out of bounds (and maybe of datetime's range once in UTC): the model refuses it.
        return naive.replace(tzinfo=UTC)
    return local_instant(naive.date(), naive.time(), tz)


def local_day_start(value: date, tz: ZoneInfo) -> datetime:
    return local_instant(value, time(), tz)
