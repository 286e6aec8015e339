"""The snapshot validator (tests/fhir_profiles.py) accepts the guide's own examples and
rejects each kind of violation the guide's StructureDefinitions define."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.fhir_profiles import FIXTURES, violations


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def entry(bundle: dict[str, Any], type_: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == type_
    )
    return found


@pytest.mark.parametrize(
    "name",
    [
        "Bundle-ExampleBundleCPTS1",
        "Appointment-1",
        "Appointment-2",
        "Practitioner-ExamplePractitionerRegul1",
    ],
)
def test_the_guides_own_examples_conform(name: str) -> None:
    assert violations(example(name)) == []


def test_a_contained_location_without_identifier_violates_the_location_profile() -> None:
    bundle = example("Bundle-ExampleBundleCPTS1")
    del entry(bundle, "PractitionerRole")["contained"][0]["identifier"]
    assert any("contained[0].identifier: 0 found, at least 1" in v for v in violations(bundle))


def test_a_location_identifier_without_system_violates_its_cardinality() -> None:
    bundle = example("Bundle-ExampleBundleCPTS1")
    del entry(bundle, "PractitionerRole")["contained"][0]["identifier"][0]["system"]
    assert any("identifier.system: 0 found" in v for v in violations(bundle))


def test_a_busy_slot_violates_the_slot_status_pattern() -> None:
    bundle = example("Bundle-ExampleBundleCPTS1")
    entry(bundle, "Slot")["status"] = "busy"
    assert any("Slot" in v and "status" in v and "pattern" in v for v in violations(bundle))


def test_a_security_code_outside_the_guides_value_set_is_rejected() -> None:
    bundle = example("Bundle-ExampleBundleCPTS1")
    entry(bundle, "Slot")["meta"]["security"][0]["code"] = "EVERYONE"
    assert any("meta.security" in v and "required value set" in v for v in violations(bundle))


def test_a_cpts_service_type_without_its_r5_extension_matches_no_slice() -> None:
    bundle = example("Bundle-ExampleBundleCPTS1")
    slot = entry(bundle, "Slot")
    for service_type in slot["serviceType"]:
        service_type.pop("extension", None)
    problems = violations(bundle)
    assert problems, "a 604 serviceType without its HealthcareService reference must fail"


def test_an_organization_identifier_that_is_not_a_finess_breaks_the_invariant() -> None:
    bundle = example("Bundle-ExampleBundleCPTS1")
    entry(bundle, "Organization")["identifier"][0]["value"] = "312345678901234"
    assert any("FINESS-invariant" in v for v in violations(bundle))


def test_a_second_organization_identifier_exceeds_the_maximum() -> None:
    bundle = example("Bundle-ExampleBundleCPTS1")
    org = entry(bundle, "Organization")
    org["identifier"].append(copy.deepcopy(org["identifier"][0]))
    assert any("identifier: 2 found, at most 1" in v for v in violations(bundle))


def test_a_practitioner_identifier_with_another_type_violates_the_pattern() -> None:
    bundle = example("Bundle-ExampleBundleCPTS1")
    ident = entry(bundle, "Practitioner")["identifier"][0]
    ident["type"]["coding"][0]["code"] = "INTRN"
    assert any("identifier.type" in v and "pattern" in v for v in violations(bundle))


def test_an_appointment_without_its_operator_extension_violates_the_slice_minimum() -> None:
    appointment = example("Appointment-1")
    appointment.pop("extension")
    assert any("appointmentOperator: 0 found" in v for v in violations(appointment))


def test_a_claimed_profile_that_is_not_vendored_is_a_violation() -> None:
    appointment = example("Appointment-1")
    appointment["meta"]["profile"] = ["http://example.org/StructureDefinition/unknown"]
    assert any("not vendored" in v for v in violations(appointment))


def test_a_malformed_resource_fails_the_base_model() -> None:
    appointment = example("Appointment-1")
    appointment["start"] = "tomorrow"
    assert any(v.startswith("base model") for v in violations(appointment))
