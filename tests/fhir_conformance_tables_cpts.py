"""Conformance tables, continued (see tests/fhir_conformance_tables.py for their format): the
CPTS profiles of the ANS guide "Service d'Accès aux Soins" 1.2.0
(https://interop.esante.gouv.fr/ig/fhir/sas), every profile by URL, and the CPTS
CapabilityStatement's requirements."""

from __future__ import annotations

from dataclasses import dataclass

from tests.fhir_conformance_tables import (
    ACT_ENCOUNTER_CODE,
    BUNDLE_TYPE,
    BY_URL,
    DAYS_OF_WEEK,
    FR,
    FR_APPOINTMENT_SAS,
    FR_LOCATION_AGREGATEUR,
    FR_PRACTITIONER_AGREGATEUR,
    FR_PRACTITIONER_REGUL,
    FR_PRACTITIONER_ROLE_EXERCICE_AGREGATEUR,
    FR_SCHEDULE_AGREGATEUR,
    GUIDE,
    HTTP_VERB,
    IDENTIFIER_USE,
    NOS,
    OPTIONAL_MANY,
    OPTIONAL_ONE,
    R5_SERVICE_TYPE,
    SAS,
    SAS_APPOINTMENT_REASON,
    SAS_CATEGORIE_ETABLISSEMENT,
    SAS_FR,
    SAS_TYPE_CRENEAU,
    SEARCH_ENTRY_MODE,
    SLOT_STATUS,
    Profile,
    slicing,
)

SAS_CPTS_BUNDLE_AGGREGATOR = Profile(
    f"{SAS}/sas-cpts-bundle-aggregator",
    "Bundle",
    {
        "type": {"min": 1, "pattern": "searchset", "binding": BUNDLE_TYPE},
        "total": {"min": 1},
        "link": {"min": 1, "max": "1"},
        "link.relation": {"min": 1},
        "link.url": {"min": 1},
        "entry": {"min": 4, "slicing": slicing(("profile", "resource"))},
        "entry.search.mode": {"binding": SEARCH_ENTRY_MODE},
        "entry.request.method": {"min": 1, "binding": HTTP_VERB},
        "entry.request.url": {"min": 1},
        "entry.response.status": {"min": 1},
        "entry:slotAgregateurCPTS": {"min": 1, "max": "*"},
        "entry:slotAgregateurCPTS.fullUrl": {"min": 1},
        "entry:scheduleAgregateurCPTS": {"min": 1, "max": "*"},
        "entry:scheduleAgregateurCPTS.fullUrl": {"min": 1},
        "entry:practitionerAgregateur": {"min": 1, "max": "*"},
        "entry:practitionerAgregateur.fullUrl": {"min": 1},
        "entry:practitionerRole": {"min": 1, "max": "*"},
        "entry:practitionerRole.fullUrl": {"min": 1},
        "entry:healthcareserviceCPTS": OPTIONAL_MANY,
        "entry:healthcareserviceCPTS.fullUrl": {"min": 1},
        "entry:organizationAgregateurCPTS": OPTIONAL_MANY,
        "entry:organizationAgregateurCPTS.fullUrl": {"min": 1},
        "entry:slotAgregateurCPTS.resource": {"profile": [f"{SAS}/sas-cpts-slot-aggregator"]},
        "entry:scheduleAgregateurCPTS.resource": {"profile": [f"{SAS_FR}/FrScheduleAgregateur"]},
        "entry:practitionerAgregateur.resource": {
            "profile": [f"{SAS_FR}/FrPractitionerAgregateur"]
        },
        "entry:practitionerRole.resource": {
            "profile": [f"{SAS_FR}/FrPractitionerRoleExerciceAgregateur"]
        },
        "entry:healthcareserviceCPTS.resource": {
            "profile": [f"{SAS}/sas-cpts-healthcareservice-aggregator"]
        },
        "entry:organizationAgregateurCPTS.resource": {
            "profile": [f"{SAS}/sas-cpts-organization-aggregator"]
        },
    },
)

SAS_CPTS_HEALTHCARESERVICE_AGGREGATOR = Profile(
    f"{SAS}/sas-cpts-healthcareservice-aggregator",
    "HealthcareService",
    {
        "id": {"min": 1},
        "extension": {"slicing": BY_URL},
        "extension:serviceTypeDuration": {
            **OPTIONAL_MANY,
            "profile": [f"{FR}/FrServiceTypeDuration"],
        },
        "identifier.use": {"binding": IDENTIFIER_USE},
        "providedBy": {"min": 1},
        "category": {"max": "1"},
        "availableTime.daysOfWeek": {"binding": DAYS_OF_WEEK},
        "notAvailable.description": {"min": 1},
    },
)

SAS_CPTS_ORGANIZATION_AGGREGATOR = Profile(
    f"{SAS}/sas-cpts-organization-aggregator",
    "Organization",
    {
        "extension": {"slicing": BY_URL},
        "extension:shortName": {**OPTIONAL_ONE, "profile": [f"{FR}/FrOrganizationShortName"]},
        "extension:description": {**OPTIONAL_ONE, "profile": [f"{FR}/FrOrganizationDescription"]},
        "extension:usePeriod": {
            **OPTIONAL_ONE,
            "profile": ["http://hl7.org/fhir/StructureDefinition/organization-period"],
        },
        "identifier": {
            "min": 1,
            "max": "1",
            "matches": ("FINESS-invariant", "value.matches('^1[0-9]{9}$')"),
        },
        "identifier.use": {"binding": IDENTIFIER_USE},
        "identifier.type": {
            "min": 1,
            "pattern": {
                "coding": [
                    {
                        "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203",
                        "code": "IDNST",
                    }
                ]
            },
        },
        "identifier.system": {"min": 1, "pattern": "urn:oid:1.2.250.1.71.4.2.2"},
        "identifier.value": {"min": 1},
        "type": {"slicing": slicing(("value", "coding.system"))},
        "type:organizationType": OPTIONAL_ONE,
        "type:organizationType.coding": {"min": 1, "max": "1"},
        "type:organizationType.coding.system": {
            "min": 1,
            "fixed": "http://interopsante.org/fhir/CodeSystem/fr-v2-3307",
        },
        "type:secteurActiviteRASS": OPTIONAL_ONE,
        "type:secteurActiviteRASS.coding": {"min": 1, "max": "1"},
        "type:secteurActiviteRASS.coding.system": {
            "min": 1,
            "fixed": f"{NOS}/TRE_R02-SecteurActivite/FHIR/TRE-R02-SecteurActivite",
        },
        "type:categorieEtablissementRASS": OPTIONAL_ONE,
        "type:categorieEtablissementRASS.coding": {"min": 1, "max": "1"},
        "type:categorieEtablissementRASS.coding.system": {
            "min": 1,
            "fixed": f"{NOS}/TRE_R66-CategorieEtablissement/FHIR/TRE-R66-CategorieEtablissement",
        },
    },
)

SAS_CPTS_SLOT_AGGREGATOR = Profile(
    f"{SAS}/sas-cpts-slot-aggregator",
    "Slot",
    {
        "meta.security": {"binding": SAS_TYPE_CRENEAU},
        "identifier.use": {"binding": IDENTIFIER_USE},
        "serviceCategory": {"max": "1"},
        "serviceType": {"slicing": slicing(("pattern", "$this"))},
        "serviceType.extension": {"slicing": BY_URL},
        "serviceType.extension:sas-servicetype-r5": {**OPTIONAL_ONE, "profile": [R5_SERVICE_TYPE]},
        "serviceType:TypeConsultation": {**OPTIONAL_MANY, "binding": ACT_ENCOUNTER_CODE},
        "serviceType:TypeConsultation.extension:sas-servicetype-r5": {
            "min": 0,
            "max": "0",
            "profile": [R5_SERVICE_TYPE],
        },
        "serviceType:TypeConsultation.coding.system": {
            "pattern": "http://terminology.hl7.org/CodeSystem/v3-ActCode"
        },
        "serviceType:referencecpts": {**OPTIONAL_MANY, "binding": SAS_CATEGORIE_ETABLISSEMENT},
        "serviceType:referencecpts.extension": {"min": 1, "slicing": BY_URL},
        "serviceType:referencecpts.extension:sas-servicetype-r5": {
            "min": 1,
            "max": "1",
            "profile": [R5_SERVICE_TYPE],
        },
        "serviceType:referencecpts.extension:sas-servicetype-r5.extension": {"max": "0"},
        "serviceType:referencecpts.extension:sas-servicetype-r5.url": {
            "min": 1,
            "fixed": R5_SERVICE_TYPE,
        },
        "appointmentType.coding": {"binding": SAS_APPOINTMENT_REASON},
        "schedule": {"min": 1},
        "status": {"min": 1, "pattern": "free", "binding": SLOT_STATUS},
        "start": {"min": 1},
        "end": {"min": 1},
    },
)

EXTENSION_SLOT_SERVICETYPE = Profile(
    R5_SERVICE_TYPE,
    "Extension",
    {
        "extension": {"max": "0"},
        "url": {"min": 1, "fixed": R5_SERVICE_TYPE},
    },
)

PROFILES: dict[str, Profile] = {
    p.url: p
    for p in (
        FR_APPOINTMENT_SAS,
        FR_LOCATION_AGREGATEUR,
        FR_PRACTITIONER_AGREGATEUR,
        FR_PRACTITIONER_REGUL,
        FR_PRACTITIONER_ROLE_EXERCICE_AGREGATEUR,
        FR_SCHEDULE_AGREGATEUR,
        SAS_CPTS_BUNDLE_AGGREGATOR,
        SAS_CPTS_HEALTHCARESERVICE_AGGREGATOR,
        SAS_CPTS_ORGANIZATION_AGGREGATOR,
        SAS_CPTS_SLOT_AGGREGATOR,
        EXTENSION_SLOT_SERVICETYPE,
    )
}

# -- The CPTS CapabilityStatement (f"{GUIDE}/CapabilityStatement/SAS-GestionnaireAgenda-CPTS",
# 1.2.0): what a CPTS agenda manager's server must serve, per resource type: its profile, its
# interactions, the `_include`s and the search parameters (by definition URL).
CPTS_CAPABILITY_URL = f"{GUIDE}/CapabilityStatement/SAS-GestionnaireAgenda-CPTS"


@dataclass(frozen=True)
class Requirement:
    profile: str
    interactions: frozenset[str]
    search_params: frozenset[str]
    search_include: frozenset[str] = frozenset()


_READ_SEARCH = frozenset({"read", "search-type"})
CPTS_CAPABILITY: dict[str, Requirement] = {
    "Slot": Requirement(
        SAS_CPTS_SLOT_AGGREGATOR.url,
        _READ_SEARCH,
        frozenset({f"{GUIDE}/SearchParameter/slot-sp-start"}),
        frozenset({"Slot:schedule", "Schedule:actor", "Slot:service-type-reference",
                   "HealthcareService:organization"}),
    ),
    "Schedule": Requirement(
        FR_SCHEDULE_AGREGATEUR.url,
        _READ_SEARCH,
        frozenset({"http://hl7.org/fhir/SearchParameter/Schedule-actor"}),
    ),
    "Practitioner": Requirement(
        FR_PRACTITIONER_AGREGATEUR.url,
        _READ_SEARCH,
        frozenset({"http://hl7.org/fhir/SearchParameter/Practitioner-identifier"}),
    ),
}  # fmt: skip
