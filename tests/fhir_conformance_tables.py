"""Conformance tables for the profiles Créneau's FHIR output claims, written from the ANS
implementation guide "Service d'Accès aux Soins" 1.2.0 (https://interop.esante.gouv.fr/ig/fhir/sas)
as a conformance suite: for each profile, its canonical URL and, per element path (relative to
the resource type; `a:b` is slice `b` of element `a`), only the rules that matter:

- `min` / `max`: the cardinality where the profile requires the element or narrows the base;
- `fixed` / `pattern`: the value the element must equal / contain (FHIR pattern semantics);
- `binding`: a required binding, its codes inline in VALUE_SETS below;
- `slicing`: the slicing of an element (discriminators and rules), its slices listed as `a:b`
  with their own cardinality, and `profile` (the profile of an extension slice or of a Bundle
  entry's resource, what `profile` and extension `url` discriminators compare);
- `matches`: a `value.matches()` invariant (key, expression), as the FINESS one.

A slice's children inherit the rules of the sliced element's children unless the slice states
its own. Elements not listed carry no rule beyond the base FHIR R4 model, which fhir.resources
checks. The validator reading these tables is tests/fhir_profiles.py; the CPTS profiles (Bundle,
Slot, HealthcareService, Organization) and the CPTS CapabilityStatement are in
tests/fhir_conformance_tables_cpts.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GUIDE = "https://interop.esante.gouv.fr/ig/fhir/sas"
GUIDE_VERSION = "1.2.0"


@dataclass(frozen=True)
class Profile:
    url: str
    type: str
    elements: dict[str, dict[str, Any]]
    version: str = GUIDE_VERSION


def slicing(*discriminators: tuple[str, str], rules: str = "open") -> dict[str, Any]:
    return {
        "discriminator": [{"type": kind, "path": path} for kind, path in discriminators],
        "rules": rules,
    }


BY_URL = slicing(("value", "url"))
OPTIONAL_ONE: dict[str, Any] = {"min": 0, "max": "1"}
OPTIONAL_MANY: dict[str, Any] = {"min": 0, "max": "*"}

# Canonical bases the profiles and their extensions live under.
SAS = f"{GUIDE}/StructureDefinition"  # the guide's own (CPTS) profiles
SAS_FR = "http://sas.fr/fhir/StructureDefinition"  # the guide's Fr*SAS/Agregateur profiles
FR = "http://interopsante.org/fhir/StructureDefinition"  # FR Core extensions they use
NOS = "https://mos.esante.gouv.fr/NOS"  # ANS terminologies (NOS)
R5_SERVICE_TYPE = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Slot.serviceType"
FR_V2_0203 = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
RPPS_OID = "urn:oid:1.2.250.1.71.4.2.1"  # RPPS national identifier (IDNPS) system

# -- Value sets of the required bindings, codes inline ---------------------------------------
# The guide's own value sets (1.2.0): system → codes.
SAS_TYPE_CRENEAU = f"{GUIDE}/ValueSet/sas-cpts-valueset-typecreneau"
SAS_APPOINTMENT_REASON = f"{GUIDE}/ValueSet/sas-valueset-appointmentreason"
SAS_CATEGORIE_ETABLISSEMENT = f"{GUIDE}/ValueSet/sas-valueset-categorieetablissement"
SAS_PARTICIPANT_STATUS = f"{GUIDE}/ValueSet/sas-valueset-participant-status"
SAS_TYPE_CONSULTATION = f"{GUIDE}/ValueSet/sas-valueset-typeconsultation"
SAS_TYPE_IDENTIFIANT = f"{GUIDE}/ValueSet/sas-valueset-typeidentifiant"
GUIDE_VALUE_SETS: dict[str, dict[str, set[str]]] = {
    SAS_TYPE_CRENEAU: {
        "https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/TRE-R314-TypeCreneau": {
            "PUBLIC", "SNP", "PRO", "CPTS"}},
    SAS_APPOINTMENT_REASON: {
        "http://terminology.hl7.org/CodeSystem/v2-0276": {"ROUTINE", "WALKIN"}},
    SAS_CATEGORIE_ETABLISSEMENT: {
        "https://mos.esante.gouv.fr/NOS/TRE_R66-CategorieEtablissement/FHIR/"
        "TRE-R66-CategorieEtablissement": {"604"}},
    SAS_PARTICIPANT_STATUS: {
        "http://hl7.org/fhir/participationstatus": {"accepted", "needs-action"}},
    SAS_TYPE_CONSULTATION: {
        "http://terminology.hl7.org/CodeSystem/v3-ActCode": {"AMB", "HH", "VR"}},
    SAS_TYPE_IDENTIFIANT: {
        "http://interopsante.org/fhir/CodeSystem/fr-v2-0203": {"IDNPS", "INTRN"}},
}  # fmt: skip

# FHIR R4 core value sets bound `required` in these profiles (codes from the R4 spec; the
# system is not compared for these).
_HL7 = "http://hl7.org/fhir/ValueSet"
SLOT_STATUS = f"{_HL7}/slotstatus"
APPOINTMENT_STATUS = f"{_HL7}/appointmentstatus"
BUNDLE_TYPE = f"{_HL7}/bundle-type"
SEARCH_ENTRY_MODE = f"{_HL7}/search-entry-mode"
IDENTIFIER_USE = f"{_HL7}/identifier-use"
CONTACT_POINT_SYSTEM = f"{_HL7}/contact-point-system"
CONTACT_POINT_USE = f"{_HL7}/contact-point-use"
HTTP_VERB = f"{_HL7}/http-verb"
NAME_USE = f"{_HL7}/name-use"
ADDRESS_USE = f"{_HL7}/address-use"
ADDRESS_TYPE = f"{_HL7}/address-type"
LOCATION_STATUS = f"{_HL7}/location-status"
LOCATION_MODE = f"{_HL7}/location-mode"
DAYS_OF_WEEK = f"{_HL7}/days-of-week"
ADMINISTRATIVE_GENDER = f"{_HL7}/administrative-gender"
PARTICIPANT_REQUIRED = f"{_HL7}/participantrequired"
ACT_ENCOUNTER_CODE = "http://terminology.hl7.org/ValueSet/v3-ActEncounterCode"
CORE_VALUE_SETS: dict[str, set[str]] = {
    SLOT_STATUS: {"busy", "free", "busy-unavailable", "busy-tentative", "entered-in-error"},
    APPOINTMENT_STATUS: {
        "proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow",
        "entered-in-error", "checked-in", "waitlist"},
    BUNDLE_TYPE: {
        "document", "message", "transaction", "transaction-response", "batch", "batch-response",
        "history", "searchset", "collection"},
    SEARCH_ENTRY_MODE: {"match", "include", "outcome"},
    IDENTIFIER_USE: {"usual", "official", "temp", "secondary", "old"},
    CONTACT_POINT_SYSTEM: {"phone", "fax", "email", "pager", "url", "sms", "other"},
    CONTACT_POINT_USE: {"home", "work", "temp", "old", "mobile"},
    HTTP_VERB: {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"},
    NAME_USE: {"usual", "official", "temp", "nickname", "anonymous", "old", "maiden"},
    ADDRESS_USE: {"home", "work", "temp", "old", "billing"},
    ADDRESS_TYPE: {"postal", "physical", "both"},
    LOCATION_STATUS: {"active", "suspended", "inactive"},
    LOCATION_MODE: {"instance", "kind"},
    DAYS_OF_WEEK: {"mon", "tue", "wed", "thu", "fri", "sat", "sun"},
    ADMINISTRATIVE_GENDER: {"male", "female", "other", "unknown"},
    PARTICIPANT_REQUIRED: {"required", "optional", "information-only"},
    # v3 ActEncounterCode (R4): the guide's consultation types are three of them.
    ACT_ENCOUNTER_CODE: {
        "AMB", "EMER", "FLD", "HH", "IMP", "ACUTE", "NONAC", "OBSENC", "PRENC", "SS", "VR"},
}  # fmt: skip

# -- Profiles (guide 1.2.0), by canonical URL -----------------------------------------------

FR_APPOINTMENT_SAS = Profile(
    f"{SAS_FR}/FrAppointmentSAS",
    "Appointment",
    {
        "extension": {"min": 1, "slicing": BY_URL},
        "extension:appointmentOperator": {
            "min": 1,
            "max": "1",
            "profile": [f"{FR}/FrAppointmentOperator"],
        },
        "extension:appointmentOperator.extension": {"max": "0"},
        "extension:appointmentOperator.url": {"min": 1, "fixed": f"{FR}/FrAppointmentOperator"},
        "extension:appointmentOperator.value[x]": {
            "min": 1,
            "slicing": slicing(("type", "$this"), rules="closed"),
        },
        "extension:appointmentOperator.value[x]:valueReference": {"min": 1, "max": "1"},
        "extension:appointmentOperator.value[x]:valueReference.identifier": {"min": 1},
        "extension:appointmentOperator.value[x]:valueReference.identifier.use": {
            "binding": IDENTIFIER_USE
        },
        "extension:appointmentOperator.value[x]:valueReference.identifier.type": {"min": 1},
        "extension:appointmentOperator.value[x]:valueReference.identifier.type.coding": {
            "min": 1,
            "max": "1",
        },
        "extension:appointmentOperator.value[x]:valueReference.identifier.type.coding.system": {
            "pattern": FR_V2_0203
        },
        "extension:appointmentOperator.value[x]:valueReference.identifier.type.coding.code": {
            "min": 1
        },
        "extension:appointmentOperator.value[x]:valueReference.identifier.system": {"min": 1},
        "extension:appointmentOperator.value[x]:valueReference.identifier.value": {"min": 1},
        "identifier": {"min": 1, "max": "1"},
        "identifier.use": {"binding": IDENTIFIER_USE},
        "identifier.system": {"min": 1},
        "identifier.value": {"min": 1},
        "status": {"min": 1, "binding": APPOINTMENT_STATUS},
        "start": {"min": 1},
        "end": {"min": 1},
        "participant": {"min": 1},
        "participant.actor.identifier.use": {"binding": IDENTIFIER_USE},
        "participant.actor.identifier.type": {"min": 1},
        "participant.actor.identifier.type.coding": {
            "min": 1,
            "max": "1",
            "pattern": {"system": FR_V2_0203, "code": "IDNPS"},
        },
        "participant.actor.identifier.system": {"min": 1, "pattern": RPPS_OID},
        "participant.actor.identifier.value": {"min": 1},
        "participant.required": {"binding": PARTICIPANT_REQUIRED},
        "participant.status": {"min": 1, "binding": SAS_PARTICIPANT_STATUS},
    },
)

FR_LOCATION_AGREGATEUR = Profile(
    f"{SAS_FR}/FrLocationAgregateur",
    "Location",
    {
        "extension": {"slicing": BY_URL},
        "extension:usePeriod": {**OPTIONAL_ONE, "profile": [f"{FR}/FrLocationUsePeriod"]},
        "identifier": {"min": 1},
        "identifier.use": {"binding": IDENTIFIER_USE},
        "identifier.type": {"min": 1},
        "identifier.system": {"min": 1},
        "identifier.value": {"min": 1},
        "status": {"binding": LOCATION_STATUS},
        "mode": {"binding": LOCATION_MODE},
        "type": {"max": "1"},
        "address": {"min": 1},
        "address.extension": {"slicing": BY_URL},
        "address.extension:inseeCode": {**OPTIONAL_ONE, "profile": [f"{FR}/FrAddressInseeCode"]},
        "address.use": {"binding": ADDRESS_USE},
        "address.type": {"binding": ADDRESS_TYPE},
        "address.line": {"min": 1, "max": "1"},
        "address.city": {"min": 1},
        "address.postalCode": {"min": 1},
        "position.longitude": {"min": 1},
        "position.latitude": {"min": 1},
        "partOf.extension": {"slicing": BY_URL},
        "partOf.extension:positionRoom": {
            **OPTIONAL_ONE,
            "profile": [f"{FR}/FrLocationPartOfPositionRoom"],
        },
        "hoursOfOperation.daysOfWeek": {"binding": DAYS_OF_WEEK},
    },
)

FR_PRACTITIONER_AGREGATEUR = Profile(
    f"{SAS_FR}/FrPractitionerAgregateur",
    "Practitioner",
    {
        "identifier": {"min": 1},
        "identifier.use": {"binding": IDENTIFIER_USE},
        "identifier.type": {
            "min": 1,
            "pattern": {"coding": [{"system": FR_V2_0203, "code": "IDNPS"}]},
        },
        "identifier.type.coding": {"max": "1"},
        "identifier.system": {"min": 1, "pattern": RPPS_OID},
        "identifier.value": {"min": 1},
        "name.extension": {"slicing": BY_URL},
        "name.extension:assemblyOrder": {
            **OPTIONAL_ONE,
            "profile": ["http://hl7.org/fhir/StructureDefinition/humanname-assembly-order"],
        },
        "name.use": {"binding": NAME_USE},
        "name.prefix": {"max": "1"},
        "telecom.extension": {"slicing": BY_URL},
        "telecom.extension:emailType": {
            **OPTIONAL_ONE,
            "profile": [f"{FR}/FrContactPointEmailType"],
        },
        "telecom.system": {"min": 1, "binding": CONTACT_POINT_SYSTEM},
        "telecom.value": {"min": 1},
        "telecom.use": {"binding": CONTACT_POINT_USE},
        "gender": {"binding": ADMINISTRATIVE_GENDER},
        "qualification.code": {"min": 1},
    },
)

FR_PRACTITIONER_REGUL = Profile(
    f"{SAS}/FrPractitionerRegul",
    "Practitioner",
    {
        "meta.source": {"pattern": "urn:oid:1.2.250.1.213.3.6"},
        "identifier": {"min": 1, "slicing": slicing(("value", "system"))},
        "identifier.use": {"binding": IDENTIFIER_USE},
        "identifier.type": {"min": 1},
        "identifier.system": {"min": 1},
        "identifier.value": {"min": 1},
        "identifier:IdentifiantNatPS": OPTIONAL_ONE,
        "identifier:IdentifiantNatPS.type": {
            "min": 1,
            "pattern": {"coding": [{"system": FR_V2_0203, "code": "IDNPS"}]},
        },
        "identifier:IdentifiantNatPS.system": {"min": 1, "pattern": RPPS_OID},
        "identifier:IdentifiantInterne": OPTIONAL_ONE,
        "identifier:IdentifiantInterne.type": {
            "min": 1,
            "pattern": {"coding": [{"system": FR_V2_0203, "code": "INTRN"}]},
        },
        "identifier:IdentifiantInterne.system": {"min": 1, "pattern": "urn:oid:1.2.250.1.213.3.6"},
        "active": {"min": 1},
        "name.extension": {"slicing": BY_URL},
        "name.extension:assemblyOrder": {
            **OPTIONAL_ONE,
            "profile": ["http://hl7.org/fhir/StructureDefinition/humanname-assembly-order"],
        },
        "name.use": {"binding": NAME_USE},
        "name.family": {"min": 1},
        "name.given": {"min": 1, "max": "1"},
        "name.prefix": {"max": "1"},
        "telecom.extension": {"slicing": BY_URL},
        "telecom.extension:emailType": {
            **OPTIONAL_ONE,
            "profile": [f"{FR}/FrContactPointEmailType"],
        },
        "telecom.system": {"min": 1, "pattern": "email", "binding": CONTACT_POINT_SYSTEM},
        "telecom.value": {"min": 1},
        "telecom.use": {"binding": CONTACT_POINT_USE},
        "gender": {"binding": ADMINISTRATIVE_GENDER},
        "qualification.code": {"min": 1},
    },
)

FR_PRACTITIONER_ROLE_EXERCICE_AGREGATEUR = Profile(
    f"{SAS_FR}/FrPractitionerRoleExerciceAgregateur",
    "PractitionerRole",
    {
        "contained": {"min": 1},
        "extension": {"slicing": BY_URL},
        "extension:serviceTypeDuration": {
            **OPTIONAL_MANY,
            "profile": [f"{FR}/FrServiceTypeDuration"],
        },
        "identifier.use": {"binding": IDENTIFIER_USE},
        "organization.identifier.use": {"binding": IDENTIFIER_USE},
        "organization.identifier.type": {
            "pattern": {"coding": [{"system": FR_V2_0203, "code": "IDNST"}]}
        },
        "organization.identifier.system": {"pattern": "urn:oid:1.2.250.1.71.4.2.2"},
        "location": {"min": 1, "max": "1"},
        "availableTime.daysOfWeek": {"binding": DAYS_OF_WEEK},
        "notAvailable.description": {"min": 1},
    },
)

FR_SCHEDULE_AGREGATEUR = Profile(
    f"{SAS_FR}/FrScheduleAgregateur",
    "Schedule",
    {
        "extension": {"slicing": BY_URL},
        "extension:serviceTypeDuration": {
            **OPTIONAL_MANY,
            "profile": [f"{FR}/FrServiceTypeDuration"],
        },
        "extension:availabilityTime": {
            **OPTIONAL_MANY,
            "profile": [f"{FR}/FrScheduleAvailabiltyTime"],
        },
        "identifier.use": {"binding": IDENTIFIER_USE},
        "serviceCategory": {"max": "1"},
        "serviceType": {"max": "0"},
        "actor": {"min": 1},
    },
)
