"""The CapabilityStatement served at /fhir/metadata: what this server supports."""

from __future__ import annotations

from typing import Any

from app.sas_bridge.fhir_resources import PROFILE

IG_CANONICAL = "https://interop.esante.gouv.fr/ig/fhir/sas"


def capability_statement(base_url: str, version: str) -> dict[str, Any]:
    def read(type_: str, *params: tuple[str, str, str]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": type_,
            "profile": PROFILE[type_],
            "interaction": [{"code": "read"}],
        }
        if params:
            entry["interaction"].append({"code": "search-type"})
            entry["searchParam"] = [
                {"name": name, "type": kind, "documentation": doc} for name, kind, doc in params
            ]
        return entry

    slot = read(
        "Slot",
        ("start", "date", "Slot start; prefixes ge, gt, le, lt, eq; several are ANDed"),
        ("status", "token", "free | busy | busy-tentative | busy-unavailable (comma: OR)"),
        ("schedule", "reference", "Schedule/<id>, comma-separated"),
        (
            "schedule.actor:Practitioner.identifier",
            "token",
            "urn:oid:1.2.250.1.71.4.2.1|8<RPPS> (or the bare RPPS), comma-separated; "
            "the guide's search: every match in one Bundle",
        ),
        ("_id", "token", "Slot ids"),
        ("_count", "number", "Page size (max 1000) outside the guide's search"),
    )
    slot["searchInclude"] = [
        "Slot:schedule",
        "Schedule:actor",
        "Slot:service-type-reference",
        "HealthcareService:organization",
    ]
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
                    read("Schedule"),
                    read("Practitioner"),
                    read("PractitionerRole"),
                    read("Location"),
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
                        ("_count", "number", "Page size (max 1000); `next` link"),
                    ),
                ],
            }
        ],
    }
