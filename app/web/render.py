"""Rendering of the web pages: the Jinja2 environment, French labels and dates in the
territory's zone, security headers."""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse

from app.web.french import commune_label, count_of, phone_display, postal_address, zone_name

LOCALE = "fr_FR"
# The paths served as HTML pages: their errors are pages too (see app.web.error_pages).
WEB_PREFIXES = (
    "/connexion",
    "/deconnexion",
    "/accueil",
    "/dashboard",
    "/cabinet",
    "/regulation",
    "/coordination",
    "/rendez-vous",
    "/agenda",
    "/medecin-traitant",
)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

MODALITIES = {
    "cabinet": "Au cabinet",
    "visite": "Visite à domicile",
    "teleconsultation": "Téléconsultation",
}
VISIBILITIES = {
    "sas": "SAS et CPTS",
    "cpts": "Membres de la CPTS seulement",
    "public": "Public (SAS, CPTS et prise de rendez-vous en ligne)",
}
SLOT_STATUSES = {
    "free": "Libre",
    "held": "Retenu (en cours de réservation)",
    "booked": "Réservé",
    "unavailable": "Indisponible",
}
BOOKING_STATUSES = {
    "held": "Retenu",
    "booked": "Réservé",
    "cancelled": "Annulé",
    "expired": "Expiré",
    "honored": "Honoré",
    "no_show": "Patient absent",
}
MT_STATUSES = {
    "waiting": "En attente",
    "proposed": "Médecin proposé",
    "attached": "Rattaché",
    "withdrawn": "Sorti de la file",
}
MT_CRITERIA = {"ald": "ALD", "70+": "70 ans et plus", "precarity": "Précarité"}
MT_SOURCES = {
    "assurance_maladie": "Assurance maladie",
    "hotline": "Ligne téléphonique",
    "sas": "SAS",
    "practice": "Cabinet",
    "cpts": "CPTS",
    "other": "Autre",
    "self": "Le patient, en ligne",
}
PROPOSAL_OUTCOMES = {
    "pending": "En attente de réponse",
    "accepted": "Acceptée",
    "declined": "Refusée",
    "lapsed": "Expirée sans réponse",
    "withdrawn": "Close (patient sorti de la file)",
}
DECLINED_BY = {"patient": "Le patient", "practitioner": "Le médecin"}
DECLINE_REASONS = {
    "distance": "Trop loin ou hors secteur",
    "schedule": "Horaires ou délais",
    "preference": "Préfère un autre médecin",
    "capacity": "Patientèle complète",
    "other": "Autre motif",
}
ROLES = {
    "admin": "Administration",
    "coordinator": "Coordination de CPTS",
    "practice": "Cabinet",
    "regulator": "Régulation SAS",
    "dashboard": "Tableau de bord",
    "sas_platform": "Plateforme nationale SAS",
}
GENDERS = {"female": "Femme", "male": "Homme", "other": "Autre"}


def cpts_name(name: str) -> str:
    """A territory's name as its CPTS: `CPTS du Pays d'Aurillac` whether or not the name says
    `CPTS` already."""
    return name if name.upper().startswith("CPTS") else f"CPTS {name}"


def _zone(tz: str | tzinfo | None) -> tzinfo | None:
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def when(
    value: datetime | None, tz: str | tzinfo | None, pattern: str = "EEE d MMM y 'à' HH:mm"
) -> str:
    """An instant as a French wall-clock time in the territory's zone (a name, or the offset
    the API's output already carries)."""
    if value is None:
        return "—"
    return format_datetime(value.astimezone(_zone(tz)), pattern, locale=LOCALE)


def hour(value: datetime, tz: str | tzinfo | None) -> str:
    return format_time(value.astimezone(_zone(tz)), "HH:mm", locale=LOCALE)


def day(value: date, pattern: str = "EEEE d MMMM y") -> str:
    return format_date(value, pattern, locale=LOCALE)


def minutes(start: datetime, end: datetime) -> str:
    return f"{int((end - start).total_seconds() // 60)} min"


def french_number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}".replace(".", ",")


# The name of each form field as the error summary says it ("Nom : Ce champ est obligatoire."),
# by the field's name in the form (the model's path).
FIELD_LABELS = {
    "address": "Adresse",
    "city": "Ville",
    "commune": "Commune",
    "commune_insee": "Commune",
    "consentement": "Accord",
    "declined_by": "Refusé par",
    "reason_code": "Motif du refus",
    "contact_email": "E-mail",
    "reference": "Référence",
    "birth_date": "Date de naissance",
    "end": "Fin",
    "end_time": "Fin",
    "family_name": "Nom",
    "finess": "FINESS",
    "gender": "Genre",
    "given_name": "Prénom",
    "intervalle": "Fréquence",
    "jours": "Jours",
    "lat": "Latitude",
    "lon": "Longitude",
    "modalite": "Modalité",
    "modality": "Modalité",
    "mt_capacity": "Capacité médecin traitant",
    "name": "Nom",
    "overbooking_daily_cap": "Surnuméraires par jour",
    "patient.birth_date": "Date de naissance",
    "patient.commune_insee": "Commune du patient",
    "patient.family_name": "Nom du patient",
    "patient.given_name": "Prénom du patient",
    "patient.ins": "INS",
    "patient.phone": "Téléphone du patient",
    "phone": "Téléphone",
    "point": "Point",
    "postal_code": "Code postal",
    "practice_id": "Cabinet",
    "practitioner.family_name": "Nom du médecin",
    "practitioner.gender": "Genre du médecin",
    "practitioner.given_name": "Prénom du médecin",
    "practitioner.mt_capacity": "Capacité médecin traitant",
    "practitioner.rpps": "RPPS",
    "practitioner_id": "Médecin",
    "preferences.communes_insee": "Communes souhaitées",
    "preferences.practitioner_gender": "Médecin souhaité",
    "rayon": "Rayon",
    "reason": "Motif",
    "regulator_id": "SAS",
    "role": "Rôle",
    "rpps": "RPPS",
    "rrule": "Règle RRULE",
    "sas_case_ref": "N° de dossier SAS",
    "siret": "SIRET",
    "slot_id": "Créneau",
    "slot_minutes": "Durée d'un créneau",
    "source": "Origine de la demande",
    "specialty": "Spécialité",
    "start": "Début",
    "start_time": "Début",
    "territory_id": "Territoire",
    "valid_from": "À partir du",
    "valid_until": "Jusqu'au",
    "visibility": "Visible par",
}

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.globals.update(
    MODALITIES=MODALITIES,
    VISIBILITIES=VISIBILITIES,
    SLOT_STATUSES=SLOT_STATUSES,
    BOOKING_STATUSES=BOOKING_STATUSES,
    MT_STATUSES=MT_STATUSES,
    MT_CRITERIA=MT_CRITERIA,
    MT_SOURCES=MT_SOURCES,
    PROPOSAL_OUTCOMES=PROPOSAL_OUTCOMES,
    DECLINED_BY=DECLINED_BY,
    DECLINE_REASONS=DECLINE_REASONS,
    ROLES=ROLES,
    GENDERS=GENDERS,
    FIELD_LABELS=FIELD_LABELS,
    count_of=count_of,
    cpts_name=cpts_name,
    commune_label=commune_label,
    phone_display=phone_display,
    postal_address=postal_address,
    zone_name=zone_name,
    when=when,
    hour=hour,
    day=day,
    minutes=minutes,
    french_number=french_number,
    timedelta7=timedelta(days=7),
)


def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def redirect(url: str) -> RedirectResponse:
    """POST-redirect-GET: 303 to a path of this site."""
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)
