"""FHIR R4 resources in the shape of the ANS "Service d'Accès aux Soins" guide (CPTS agenda
manager). Pure functions from directory and slot data to JSON-ready dicts; `prune` removes
every empty element, since the guide forbids sending one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from app.directory.regulator_accounts import RPPS_SYSTEM as RPPS_SYSTEM  # FHIR vocabulary too
from app.validators import phone_e164

IG = "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition"
SAS = "http://sas.fr/fhir/StructureDefinition"
PROFILE = {
    "Slot": f"{IG}/sas-cpts-slot-aggregator",
    "Bundle": f"{IG}/sas-cpts-bundle-aggregator",
    "HealthcareService": f"{IG}/sas-cpts-healthcareservice-aggregator",
    "Organization": f"{IG}/sas-cpts-organization-aggregator",
    "Schedule": f"{SAS}/FrScheduleAgregateur",
    "Practitioner": f"{SAS}/FrPractitionerAgregateur",
    "PractitionerRole": f"{SAS}/FrPractitionerRoleExerciceAgregateur",
    "Location": f"{SAS}/FrLocationAgregateur",
    "Appointment": f"{SAS}/FrAppointmentSAS",
}
STRUCTURE_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
ID_TYPE_SYSTEM = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
LOCATION_ID_TYPE_SYSTEM = "http://interopsante.org/fhir/CodeSystem/fr-location-identifier-type"
FR_CORE_ID_TYPE_SYSTEM = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
TYPE_CRENEAU = "https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/TRE-R314-TypeCreneau"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CATEGORIE_ETABLISSEMENT = (
    "https://mos.esante.gouv.fr/NOS/TRE_R66-CategorieEtablissement/FHIR/"
    "TRE-R66-CategorieEtablissement"
)
SPECIALITE = (
    "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
)
APPOINTMENT_REASON = "http://terminology.hl7.org/CodeSystem/v2-0276"
SERVICE_TYPE_R5 = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Slot.serviceType"

MODALITY_CODE = {"cabinet": "AMB", "visite": "HH", "teleconsultation": "VR"}
# Audiences of a slot (meta.security). `cpts` slots never reach the national platform.
VISIBILITY_SECURITY = {
    "public": ("PUBLIC", "PRO", "SNP", "CPTS"),
    "sas": ("SNP", "CPTS"),
    "cpts": ("CPTS",),
}
SPECIALTY_CODE = {"general_practitioner": "SM54"}


def prune(value: Any) -> Any:
    """Drop None, empty strings, lists and objects, recursively."""
    if isinstance(value, dict):
        cleaned = {k: prune(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        items = [prune(v) for v in value]
        return [v for v in items if v not in (None, "", [], {})]
    return value


def resource(value: dict[str, Any]) -> dict[str, Any]:
    cleaned = prune(value)
    assert isinstance(cleaned, dict)
    return cleaned


@lru_cache(maxsize=4096)
def _phone(value: str | None) -> str | None:
    """`+33…`, or None for a number that does not parse (left out rather than sent wrong).
    Cached: parsing is the costliest step of an included resource, and a phone is a string."""
    if not value:
        return None
    try:
        return phone_e164(value)
    except ValueError:
        return None


def rpps_identifier(rpps: str) -> dict[str, Any]:
    return {
        "type": {"coding": [{"system": ID_TYPE_SYSTEM, "code": "IDNPS"}]},
        "system": RPPS_SYSTEM,
        "value": f"8{rpps}",
    }


@dataclass(frozen=True)
class Context:
    """A practitioner with its practice and territory: what every resource but Slot needs."""

    practitioner_id: uuid.UUID
    rpps: str
    family_name: str
    given_name: str
    profession: str
    specialty: str | None
    practice_id: uuid.UUID
    practice_name: str
    address: str
    postal_code: str | None
    city: str | None
    practice_phone: str | None
    practice_finess: str | None
    siret: str | None
    cabinet_id: str | None
    booking_url: str | None
    lat: float
    lon: float
    territory_id: uuid.UUID
    territory_name: str
    territory_finess: str | None
    territory_phone: str | None
    timezone: str
    department: str


class SlotRow(NamedTuple):
    """One slot of the search, with its context. `start` and `end` are instants (any offset):
    they are written in the territory's zone (`ctx.timezone`)."""

    id: uuid.UUID
    start: datetime
    end: datetime
    modality: str
    visibility: str
    fhir_status: str
    ctx: Context


@lru_cache(maxsize=32)
def _slot_meta(visibility: str, status: str) -> dict[str, Any]:
    """The guide's Slot profile fixes `status` to `free`: other slots do not claim it."""
    meta: dict[str, Any] = {"profile": [PROFILE["Slot"]]} if status == "free" else {}
    return {
        **meta,
        "security": [
            {"system": TYPE_CRENEAU, "code": code} for code in VISIBILITY_SECURITY[visibility]
        ],
    }


@lru_cache(maxsize=4096)
def _service_types(modality: str, territory_id: uuid.UUID) -> list[dict[str, Any]]:
    return [
        {"coding": [{"system": ACT_CODE, "code": MODALITY_CODE[modality]}]},
        {
            "extension": [
                {
                    "url": SERVICE_TYPE_R5,
                    "valueReference": {"reference": f"HealthcareService/{territory_id}"},
                }
            ],
            "coding": [{"system": CATEGORIE_ETABLISSEMENT, "code": "604"}],
        },
    ]


@lru_cache(maxsize=64)
def _specialty(profession: str, specialty: str | None) -> list[dict[str, Any]]:
    code = SPECIALTY_CODE.get(profession)
    if code:
        return [{"coding": [{"system": SPECIALITE, "code": code}]}]
    return [{"text": specialty or profession}]


_ROUTINE = {"coding": [{"system": APPOINTMENT_REASON, "code": "ROUTINE"}]}


class SlotWriter:
    """The Slot resources of one answer. What slots share is made once: each practitioner's
    parts (specialty, schedule reference, booking page) and each distinct instant's text in its
    territory's zone (slots of one territory start at the same few times). The constant parts
    are shared between resources: the result is only ever serialised."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._parts: dict[uuid.UUID, tuple[list[dict[str, Any]], dict[str, str], str]] = {}
        self._instants: dict[tuple[datetime, str], str] = {}
        # Slots come by start time: neighbours often share their start, and their end. A
        # comparison costs less than hashing a new datetime.
        self._last_start: tuple[datetime | None, str, str] = (None, "", "")
        self._last_end: tuple[datetime | None, str, str] = (None, "", "")

    def instant(self, when: datetime, timezone: str) -> str:
        """`when` in the zone, to the millisecond, with its offset."""
        key = (when, timezone)  # aware datetimes hash and compare as instants
        text = self._instants.get(key)
        if text is None:
            local = when.astimezone(ZoneInfo(timezone))
            text = self._instants[key] = local.isoformat(timespec="milliseconds")
        return text

    def _practitioner_parts(self, ctx: Context) -> tuple[list[dict[str, Any]], dict[str, str], str]:
        parts = self._parts.get(ctx.practitioner_id)
        if parts is None:
            parts = self._parts[ctx.practitioner_id] = (
                _specialty(ctx.profession, ctx.specialty),
                {"reference": f"Schedule/{ctx.practitioner_id}"},
                f"{self.base_url}/agenda/{ctx.practitioner_id}",
            )
        return parts

    def slot(self, row: SlotRow, id_: str | None = None) -> dict[str, Any]:
        """Built directly, without pruning: every element here is always present. `id_`: the
        slot's id as text when the caller has it already."""
        ctx = row.ctx
        specialty, schedule_reference, comment = self._practitioner_parts(ctx)
        zone, last = ctx.timezone, self._last_start
        if row.start == last[0] and zone == last[1]:
            start = last[2]
        else:
            start = self.instant(row.start, zone)
            self._last_start = (row.start, zone, start)
        last = self._last_end
        if row.end == last[0] and zone == last[1]:
            end = last[2]
        else:
            end = self.instant(row.end, zone)
            self._last_end = (row.end, zone, end)
        return {
            "resourceType": "Slot",
            "id": id_ or str(row.id),
            "meta": _slot_meta(row.visibility, row.fhir_status),
            "serviceType": _service_types(row.modality, ctx.territory_id),
            "specialty": specialty,
            "appointmentType": _ROUTINE,
            "schedule": schedule_reference,
            "status": row.fhir_status,
            "start": start,
            "end": end,
            "comment": comment,
        }


def slot(row: SlotRow, base_url: str) -> dict[str, Any]:
    """One Slot resource (a search writes many through one SlotWriter)."""
    return SlotWriter(base_url).slot(row)


def schedule(row: Context) -> dict[str, Any]:
    """One Schedule per practitioner and place of consultation (a GP has one practice)."""
    return {
        "resourceType": "Schedule",
        "id": str(row.practitioner_id),
        "meta": {"profile": [PROFILE["Schedule"]]},
        "active": True,
        "actor": [
            {"reference": f"Practitioner/{row.practitioner_id}"},
            {"reference": f"PractitionerRole/{row.practitioner_id}"},
        ],
    }


# The included resources a search repeats (each practitioner's, each CPTS's) are cached by the
# whole Context they are made from, every field of the rows read: a changed practitioner,
# practice or territory is another key, never a stale answer. Callers only serialise them.
_CONTEXTS_CACHED = 2048


@lru_cache(maxsize=_CONTEXTS_CACHED)
def practitioner(row: Context) -> dict[str, Any]:
    return resource(
        {
            "resourceType": "Practitioner",
            "id": str(row.practitioner_id),
            "meta": {"profile": [PROFILE["Practitioner"]]},
            "identifier": [rpps_identifier(row.rpps)],
            "name": [{"family": row.family_name, "given": [row.given_name]}],
        }
    )


def location_identifier(practice_id: uuid.UUID, base_url: str) -> dict[str, Any]:
    """The place's own identifier (FrLocationAgregateur: type, system and value each 1..1; the
    guide's example uses type INTRN and the editor's system)."""
    return {
        "type": {"coding": [{"system": LOCATION_ID_TYPE_SYSTEM, "code": "INTRN"}]},
        "system": f"{base_url}/fhir/Location",
        "value": str(practice_id),
    }


def _location_body(row: Context, base_url: str) -> dict[str, Any]:
    # FrLocationAgregateur needs street, postal code and city: without them, no claim (and
    # such a practice is never sent to the platform, see app/directory/readiness.py).
    complete = bool(row.address and row.postal_code and row.city)
    return {
        "meta": {"profile": [PROFILE["Location"]] if complete else None},
        "identifier": [location_identifier(row.practice_id, base_url)],
        "name": row.practice_name,
        "address": {
            "line": [row.address],
            "city": row.city,
            "state": row.department,  # the département (SMART Scheduling Links need a state)
            "postalCode": row.postal_code,
        },
        "position": {"latitude": row.lat, "longitude": row.lon},
        "telecom": [{"system": "phone", "value": _phone(row.practice_phone)}],
    }


def location(row: Context, base_url: str) -> dict[str, Any]:
    return resource(
        {"resourceType": "Location", "id": str(row.practice_id), **_location_body(row, base_url)}
    )


def _structure_identifier(
    finess: str | None, siret: str | None, cabinet_id: str | None
) -> dict[str, Any] | None:
    """The guide's order: `1` + FINESS, else `3` + SIRET, else the private practice's RPPS rang
    (`4`…) or ADELI rang (`0`…), stored with its prefix."""
    value = f"1{finess}" if finess else f"3{siret}" if siret else cabinet_id
    if value is None:
        return None
    return {
        "type": {"coding": [{"system": ID_TYPE_SYSTEM, "code": "IDNST"}]},
        "system": STRUCTURE_SYSTEM,
        "value": value,
    }


@lru_cache(maxsize=_CONTEXTS_CACHED)
def practitioner_role(row: Context, base_url: str) -> dict[str, Any]:
    structure = _structure_identifier(row.practice_finess, row.siret, row.cabinet_id)
    return resource(
        {
            "resourceType": "PractitionerRole",
            "id": str(row.practitioner_id),
            "meta": {"profile": [PROFILE["PractitionerRole"]]},
            "contained": [
                {"resourceType": "Location", "id": "location", **_location_body(row, base_url)}
            ],
            "active": True,
            "practitioner": {"reference": f"Practitioner/{row.practitioner_id}"},
            "organization": {"identifier": structure} if structure else None,
            "location": [{"reference": "#location"}],
            "telecom": [{"system": "phone", "value": _phone(row.practice_phone)}],
        }
    )


def healthcare_service(row: Context) -> dict[str, Any]:
    return {
        "resourceType": "HealthcareService",
        "id": str(row.territory_id),
        "meta": {"profile": [PROFILE["HealthcareService"]]},
        "active": True,
        "providedBy": {"reference": f"Organization/{row.territory_id}"},
    }


@lru_cache(maxsize=_CONTEXTS_CACHED)
def organization(row: Context) -> dict[str, Any]:
    """The CPTS. Its one identifier is `1` + its FINESS. Without a FINESS it cannot be the
    guide's CPTS Organization: it does not claim that profile (and such a territory is never
    sent to the platform, see `fhir_contexts.visibility_for`)."""
    identifier = None
    if row.territory_finess and row.territory_finess.isdigit():
        identifier = {
            "type": {"coding": [{"system": FR_CORE_ID_TYPE_SYSTEM, "code": "IDNST"}]},
            "system": STRUCTURE_SYSTEM,
            "value": f"1{row.territory_finess}",
        }
    return resource(
        {
            "resourceType": "Organization",
            "id": str(row.territory_id),
            "meta": {"profile": [PROFILE["Organization"]] if identifier else None},
            "identifier": [identifier],
            "active": True,
            "name": row.territory_name,
            "telecom": [{"system": "phone", "value": _phone(row.territory_phone)}],
        }
    )
