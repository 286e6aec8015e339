"""The validator (tests/fhir_profiles.py) reading the conformance tables written from the ANS
SAS guide 1.2.0 (tests/fhir_conformance_tables*.py) accepts small resources written here to
the guide's profiles, and rejects each kind of violation the tables state."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.fhir_conformance_tables import (
    FR_APPOINTMENT_SAS,
    FR_LOCATION_AGREGATEUR,
    FR_PRACTITIONER_AGREGATEUR,
    FR_PRACTITIONER_REGUL,
    FR_PRACTITIONER_ROLE_EXERCICE_AGREGATEUR,
    FR_SCHEDULE_AGREGATEUR,
    FR_V2_0203,
    NOS,
    R5_SERVICE_TYPE,
    RPPS_OID,
)
from tests.fhir_conformance_tables_cpts import (
    PROFILES,
    SAS_CPTS_BUNDLE_AGGREGATOR,
    SAS_CPTS_HEALTHCARESERVICE_AGGREGATOR,
    SAS_CPTS_ORGANIZATION_AGGREGATOR,
    SAS_CPTS_SLOT_AGGREGATOR,
)
from tests.fhir_profiles import violations

BASE = "https://creneau.example/fhir"
TYPE_CRENEAU = f"{NOS}/TRE_R314-TypeCreneau/FHIR/TRE-R314-TypeCreneau"
CATEGORIE = f"{NOS}/TRE_R66-CategorieEtablissement/FHIR/TRE-R66-CategorieEtablissement"


def _rpps(value: str) -> dict[str, Any]:
    return {
        "type": {"coding": [{"system": FR_V2_0203, "code": "IDNPS"}]},
        "system": RPPS_OID,
        "value": value,
    }


def cpts_bundle() -> dict[str, Any]:
    """A CPTS search answer: one free slot, its schedule, GP, role (with its Location
    contained), the CPTS's HealthcareService and Organization."""
    slot = {
        "resourceType": "Slot",
        "id": "s1",
        "meta": {
            "profile": [SAS_CPTS_SLOT_AGGREGATOR.url],
            "security": [
                {"system": TYPE_CRENEAU, "code": "PUBLIC"},
                {"system": TYPE_CRENEAU, "code": "CPTS"},
            ],
        },
        "serviceType": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"}
                ]
            },
            {
                "extension": [
                    {
                        "url": R5_SERVICE_TYPE,
                        "valueReference": {"reference": "HealthcareService/h1"},
                    }
                ],
                "coding": [{"system": CATEGORIE, "code": "604"}],
            },
        ],
        "appointmentType": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v2-0276", "code": "WALKIN"}
            ]
        },
        "schedule": {"reference": "Schedule/g1"},
        "status": "free",
        "start": "2026-03-02T09:00:00+01:00",
        "end": "2026-03-02T09:15:00+01:00",
    }
    schedule = {
        "resourceType": "Schedule",
        "id": "g1",
        "meta": {"profile": [FR_SCHEDULE_AGREGATEUR.url]},
        "actor": [{"reference": "Practitioner/g1"}, {"reference": "PractitionerRole/g1"}],
    }
    practitioner = {
        "resourceType": "Practitioner",
        "id": "g1",
        "meta": {"profile": [FR_PRACTITIONER_AGREGATEUR.url]},
        "identifier": [_rpps("810000000017")],
        "name": [{"family": "Martin", "given": ["Claire"]}],
    }
    location = {
        "resourceType": "Location",
        "id": "p1",
        "meta": {"profile": [FR_LOCATION_AGREGATEUR.url]},
        "identifier": [
            {
                "type": {"coding": [{"system": FR_V2_0203, "code": "INTRN"}]},
                "system": f"{BASE}/Location",
                "value": "p1",
            }
        ],
        "status": "active",
        "address": {"line": ["3 rue des Lilas"], "city": "Rennes", "postalCode": "35000"},
    }
    role = {
        "resourceType": "PractitionerRole",
        "id": "g1",
        "meta": {"profile": [FR_PRACTITIONER_ROLE_EXERCICE_AGREGATEUR.url]},
        "contained": [location],
        "practitioner": {"reference": "Practitioner/g1"},
        "location": [{"reference": "#p1"}],
    }
    service = {
        "resourceType": "HealthcareService",
        "id": "h1",
        "meta": {"profile": [SAS_CPTS_HEALTHCARESERVICE_AGGREGATOR.url]},
        "providedBy": {"reference": "Organization/o1"},
    }
    organization = {
        "resourceType": "Organization",
        "id": "o1",
        "meta": {"profile": [SAS_CPTS_ORGANIZATION_AGGREGATOR.url]},
        "identifier": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203",
                            "code": "IDNST",
                        }
                    ]
                },
                "system": "urn:oid:1.2.250.1.71.4.2.2",
                "value": "1350000001",
            }
        ],
        "name": "CPTS du Pays de Rennes",
    }
    entries: list[tuple[dict[str, Any], str]] = [
        (slot, "match"),
        (schedule, "include"),
        (practitioner, "include"),
        (role, "include"),
        (service, "include"),
        (organization, "include"),
    ]
    return {
        "resourceType": "Bundle",
        "meta": {"profile": [SAS_CPTS_BUNDLE_AGGREGATOR.url]},
        "type": "searchset",
        "total": 1,
        "link": [{"relation": "self", "url": f"{BASE}/Slot?status=free"}],
        "entry": [
            {
                "fullUrl": f"{BASE}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": mode},
            }
            for r, mode in entries
        ],
    }


def appointment() -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "id": "a1",
        "meta": {"profile": [FR_APPOINTMENT_SAS.url]},
        "extension": [
            {
                "url": "http://interopsante.org/fhir/StructureDefinition/FrAppointmentOperator",
                "valueReference": {"identifier": _rpps("810000000025")},
            }
        ],
        "identifier": [{"system": f"{BASE}/Appointment", "value": "a1"}],
        "status": "booked",
        "start": "2026-03-02T09:00:00+01:00",
        "end": "2026-03-02T09:15:00+01:00",
        "participant": [{"actor": {"identifier": _rpps("810000000017")}, "status": "accepted"}],
    }


def regulator() -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": "r1",
        "meta": {"source": "urn:oid:1.2.250.1.213.3.6", "profile": [FR_PRACTITIONER_REGUL.url]},
        "identifier": [_rpps("810000000033")],
        "active": True,
        "name": [{"family": "Durand", "given": ["Paul"]}],
        "telecom": [{"system": "email", "value": "paul.durand@example.org"}],
    }


def entry(bundle: dict[str, Any], type_: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == type_
    )
    return found


def test_every_profile_our_output_claims_is_in_the_tables() -> None:
    claimed = {
        FR_APPOINTMENT_SAS.url, FR_LOCATION_AGREGATEUR.url, FR_PRACTITIONER_AGREGATEUR.url,
        FR_PRACTITIONER_REGUL.url, FR_PRACTITIONER_ROLE_EXERCICE_AGREGATEUR.url,
        FR_SCHEDULE_AGREGATEUR.url, SAS_CPTS_BUNDLE_AGGREGATOR.url,
        SAS_CPTS_HEALTHCARESERVICE_AGGREGATOR.url, SAS_CPTS_ORGANIZATION_AGGREGATOR.url,
        SAS_CPTS_SLOT_AGGREGATOR.url,
    }  # fmt: skip
    assert claimed <= set(PROFILES)
    assert {p.version for p in PROFILES.values()} == {"1.2.0"}


@pytest.mark.parametrize("make", [cpts_bundle, appointment, regulator])
def test_resources_written_to_the_guide_conform(make: Any) -> None:
    assert violations(make()) == []


def test_a_second_appointment_participant_and_a_needs_action_status_conform() -> None:
    a = appointment()
    a["participant"].append(
        {"actor": {"identifier": _rpps("810000000041")}, "status": "needs-action"}
    )
    assert violations(a) == []


def test_a_contained_location_without_identifier_violates_the_location_profile() -> None:
    bundle = cpts_bundle()
    del entry(bundle, "PractitionerRole")["contained"][0]["identifier"]
    assert any("contained[0].identifier: 0 found, at least 1" in v for v in violations(bundle))


def test_a_location_identifier_without_system_violates_its_cardinality() -> None:
    bundle = cpts_bundle()
    del entry(bundle, "PractitionerRole")["contained"][0]["identifier"][0]["system"]
    assert any("identifier.system: 0 found" in v for v in violations(bundle))


def test_a_busy_slot_violates_the_slot_status_pattern() -> None:
    bundle = cpts_bundle()
    entry(bundle, "Slot")["status"] = "busy"
    assert any("Slot" in v and "status" in v and "pattern" in v for v in violations(bundle))


def test_a_security_code_outside_the_guides_value_set_is_rejected() -> None:
    bundle = cpts_bundle()
    entry(bundle, "Slot")["meta"]["security"][0]["code"] = "EVERYONE"
    assert any("meta.security" in v and "required value set" in v for v in violations(bundle))


def test_a_core_code_outside_its_required_value_set_is_rejected() -> None:
    a = appointment()
    a["participant"][0]["status"] = "declined"  # in FHIR's set, not in the guide's
    assert any("participant.status" in v and "required value set" in v for v in violations(a))
    bundle = cpts_bundle()
    entry(bundle, "PractitionerRole")["contained"][0]["status"] = "closed"
    assert any("status" in v and "location-status" in v for v in violations(bundle))


def test_a_cpts_service_type_without_its_r5_extension_matches_no_slice() -> None:
    bundle = cpts_bundle()
    for service_type in entry(bundle, "Slot")["serviceType"]:
        service_type.pop("extension", None)
    problems = violations(bundle)
    assert any("extension:sas-servicetype-r5: 0 found, at least 1" in v for v in problems)


def test_a_consultation_type_with_the_r5_extension_exceeds_its_maximum() -> None:
    bundle = cpts_bundle()
    slot = entry(bundle, "Slot")
    slot["serviceType"][0]["extension"] = copy.deepcopy(slot["serviceType"][1]["extension"])
    assert any("TypeConsultation.extension" in v and "at most 0" in v for v in violations(bundle))


def test_an_organization_identifier_that_is_not_a_finess_breaks_the_invariant() -> None:
    bundle = cpts_bundle()
    entry(bundle, "Organization")["identifier"][0]["value"] = "312345678901234"
    assert any("FINESS-invariant" in v for v in violations(bundle))


def test_a_second_organization_identifier_exceeds_the_maximum() -> None:
    bundle = cpts_bundle()
    org = entry(bundle, "Organization")
    org["identifier"].append(copy.deepcopy(org["identifier"][0]))
    assert any("identifier: 2 found, at most 1" in v for v in violations(bundle))


def test_a_practitioner_identifier_with_another_type_violates_the_pattern() -> None:
    bundle = cpts_bundle()
    ident = entry(bundle, "Practitioner")["identifier"][0]
    ident["type"]["coding"][0]["code"] = "INTRN"
    assert any("identifier.type" in v and "pattern" in v for v in violations(bundle))


def test_a_bundle_without_a_slot_violates_the_entry_slice_minimum() -> None:
    bundle = cpts_bundle()
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Slot"]
    assert any("entry:slotAgregateurCPTS: 0 found" in v for v in violations(bundle))


def test_a_bundle_entry_without_full_url_violates_its_slice() -> None:
    bundle = cpts_bundle()
    del bundle["entry"][1]["fullUrl"]
    assert any("scheduleAgregateurCPTS.fullUrl: 0 found" in v for v in violations(bundle))


def test_a_search_entry_mode_outside_its_value_set_is_rejected() -> None:
    bundle = cpts_bundle()
    bundle["entry"][0]["search"]["mode"] = "primary"
    assert any("search.mode" in v and "required value set" in v for v in violations(bundle))


def test_a_schedule_with_a_service_type_exceeds_the_maximum_of_zero() -> None:
    bundle = cpts_bundle()
    entry(bundle, "Schedule")["serviceType"] = [{"text": "GP"}]
    assert any(
        "Schedule" in v and "serviceType: 1 found, at most 0" in v for v in violations(bundle)
    )


def test_an_appointment_without_its_operator_extension_violates_the_slice_minimum() -> None:
    a = appointment()
    a.pop("extension")
    assert any("appointmentOperator: 0 found" in v for v in violations(a))


def test_an_operator_extension_with_another_value_type_matches_no_closed_slice() -> None:
    a = appointment()
    a["extension"][0] = {"url": a["extension"][0]["url"], "valueString": "810000000025"}
    assert any("closed slicing" in v for v in violations(a))


def test_a_regulator_with_a_phone_violates_the_email_pattern() -> None:
    p = regulator()
    p["telecom"][0] = {"system": "phone", "value": "+33299000000"}
    assert any("telecom.system" in v and "pattern" in v for v in violations(p))


def test_a_regulator_without_given_name_or_active_violates_the_minimums() -> None:
    p = regulator()
    del p["active"], p["name"][0]["given"]
    problems = violations(p)
    assert any("Practitioner/r1.active: 0 found" in v for v in problems)
    assert any("name.given: 0 found" in v for v in problems)


def test_a_regulator_from_another_source_violates_the_meta_source_pattern() -> None:
    p = regulator()
    p["meta"]["source"] = "urn:oid:1.2.3"
    assert any("meta.source" in v and "pattern" in v for v in violations(p))


def test_a_claimed_profile_that_is_not_in_the_tables_is_a_violation() -> None:
    a = appointment()
    a["meta"]["profile"] = ["http://example.org/StructureDefinition/unknown"]
    assert any("not in the conformance tables" in v for v in violations(a))


def test_a_malformed_resource_fails_the_base_model() -> None:
    a = appointment()
    a["start"] = "tomorrow"
    assert any(v.startswith("base model") for v in violations(a))
