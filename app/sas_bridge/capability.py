"""The CapabilityStatement served at /fhir/metadata: what this server supports."""

from __future__ import annotations

from typing import Any

from app.sas_bridge.accounts import REGULATOR_PROFILE
from app.sas_bridge.fhir_resources import PROFILE

IG_CANONICAL = "https://interop.esante.gouv.fr/ig/fhir/sas"
CORE = "http://hl7.org/fhir/SearchParameter"
PAGING = (
    ("_count", "number", "Page size (max 1000); a `next` link (not in the guide's Slot search)"),
    ("_offset", "number", "Where the page starts"),
)


def capability_statement(base_url: str, version: str) -> dict[str, Any]:
    def read(type_: str, *params: tuple[str, ...]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": type_,
            "profile": PROFILE[type_],
            "interaction": [{"code": "read"}],
        }
        if params:
            entry["interaction"].append({"code": "search-type"})
            entry["searchParam"] = [
                {"name": p[0], "type": p[1], "documentation": p[2]}
                | ({"definition": p[3]} if len(p) > 3 else {})
                for p in params
            ]
        return entry

    slot = read(
        "Slot",
        (
            "start",
            "date",
            "Slot start; prefixes ge, gt, le, lt, eq; several are ANDed; a date without time "
            "(YYYY, YYYY-MM, YYYY-MM-DD) is that period in the territory's zone",
            f"{IG_CANONICAL}/SearchParameter/slot-sp-start",
        ),
        ("status", "token", "free | busy | busy-tentative | busy-unavailable (comma: OR)"),
        ("schedule", "reference", "Schedule/<id>, comma-separated"),
        (
            "schedule.actor:Practitioner.identifier",
            "token",
            "urn:oid:1.2.250.1.71.4.2.1|8<RPPS> (or the bare RPPS), comma-separated; "
            "the guide's search: every match in one Bundle",
        ),
        ("_id", "token", "Slot ids"),
        *PAGING,
    )
    slot["searchInclude"] = [
        "Slot:schedule",
        "Schedule:actor",
        "Slot:service-type-reference",
        "HealthcareService:organization",
    ]
    practitioner = read(
        "Practitioner",
        ("_id", "token", "Practitioner ids"),
        (
            "identifier",
            "token",
            "urn:oid:1.2.250.1.71.4.2.1|8<RPPS> (or the bare RPPS), comma-separated",
            f"{CORE}/Practitioner-identifier",
        ),
        *PAGING,
    )
    # The platform's regulator accounts: create, and conditional update by identifier.
    practitioner["supportedProfile"] = [REGULATOR_PROFILE]
    practitioner["interaction"] += [{"code": "create"}, {"code": "update"}]
    practitioner["updateCreate"] = False
    practitioner["conditionalCreate"] = False
    practitioner["conditionalUpdate"] = True
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-24",
        "kind": "instance",
        "software": {"name": "Créneau", "version": version},
        "implementation": {
            "description": "Créneau, CPTS agenda manager",
            "url": f"{base_url}/fhir",
        },
        "instantiates": [f"{IG_CANONICAL}/CapabilityStatement/SAS-GestionnaireAgenda-CPTS"],
        "implementationGuide": [IG_CANONICAL],
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Créneaux de soins non programmés d'une CPTS",
                "security": {
                    "cors": False,
                    "description": "Authorization: Bearer <API key>; mutual TLS in front",
                },
                "resource": [
                    slot,
                    read(
                        "Schedule",
                        ("_id", "token", "Schedule ids (one per practitioner)"),
                        (
                            "actor",
                            "reference",
                            "Practitioner/<id> or PractitionerRole/<id>, comma-separated",
                            f"{CORE}/Schedule-actor",
                        ),
                        *PAGING,
                    ),
                    practitioner,
                    read(
                        "PractitionerRole",
                        ("_id", "token", "PractitionerRole ids"),
                        ("practitioner", "reference", "Practitioner/<id>, comma-separated"),
                        *PAGING,
                    ),
                    read(
                        "Location",
                        ("_id", "token", "Location ids (one per practice)"),
                        ("identifier", "token", "<PUBLIC_BASE_URL>/fhir/Location|<id>"),
                        *PAGING,
                    ),
                    read("HealthcareService"),
                    read("Organization"),
                    read(
                        "Appointment",
                        ("date", "date", "Appointment start; prefixes ge, gt, le, lt, eq"),
                        ("status", "token", "pending | booked | cancelled | fulfilled | noshow"),
                        ("identifier", "token", "Créneau's appointment identifier"),
                        ("practitioner", "reference", "Practitioner/<id>"),
                        ("slot", "reference", "Slot/<id>"),
                        ("_id", "token", "Appointment ids"),
                        *PAGING,
                    ),
                ],
            }
        ],
    }
