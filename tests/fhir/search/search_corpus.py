"""The conformance corpus: small resources; expected matches are worked out in test_search_conformance.py."""

from __future__ import annotations

from typing import Any

MRN = "http://hospital.org/mrn"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"


def _obs(oid: str, **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": fields.pop("status", "final"), **fields}


def _qty(value: float, code: str, unit: str | None = None) -> dict[str, Any]:
    return {"value": value, "unit": unit or code, "system": UCUM, "code": code}


HEART_RATE = {"coding": [{"system": LOINC, "code": "8867-4", "display": "Heart rate"}], "text": "Heart rate"}
WEIGHT = {"coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}]}
VITALS = [{"coding": [{"system": OBS_CAT, "code": "vital-signs"}]}]

CORPUS: list[dict[str, Any]] = [
    {"resourceType": "Organization", "id": "org1", "name": "Acme Clinic"},
    {
        "resourceType": "Organization",
        "id": "org2",
        "name": "Beta Hospital",
        "partOf": {"reference": "Organization/org1"},
    },
    {"resourceType": "Practitioner", "id": "pr1", "name": [{"family": "Welby", "given": ["Marcus"]}]},
    {"resourceType": "Practitioner", "id": "pr2", "name": [{"family": "Kildare"}]},
    {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {
            "tag": [{"system": "http://acme.org/tags", "code": "vip"}],
            "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"],
            "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}],
            "source": "http://src.example/feed",
        },
        "identifier": [
            {"type": {"coding": [{"system": V2_0203, "code": "MR"}]}, "system": MRN, "value": "12345"}
        ],
        "active": True,
        "name": [{"family": "Chalmers", "given": ["Peter", "James"]}],
        "telecom": [{"system": "phone", "value": "555-0101"}],
        "gender": "male",
        "birthDate": "1974-12-25",
        "address": [{"city": "Paris"}],
        "generalPractitioner": [{"reference": "Practitioner/pr1"}],
        "managingOrganization": {"reference": "Organization/org1"},
    },
    {
        "resourceType": "Patient",
        "id": "p2",
        "identifier": [{"value": "999"}],
        "name": [{"family": "Müller", "given": ["Zoë"]}],
        "gender": "female",
        "birthDate": "1980",
        "managingOrganization": {"reference": "Organization/org2"},
    },
    {
        "resourceType": "Patient",
        "id": "p3",
        "identifier": [{"system": "http://other.org", "value": "12345"}],
        "name": [{"family": "Chalmerson"}],
        "gender": "other",
        "birthDate": "1980-05-05",
    },
    {"resourceType": "Patient", "id": "p4", "identifier": [{"value": "a,b|c"}], "birthDate": "1990-01-01"},
    {"resourceType": "Patient", "id": "pdel", "name": [{"family": "Gone"}]},  # deleted by the fixture
    {
        "resourceType": "Group",
        "id": "g1",
        "type": "person",
        "actual": True,
        "name": "Peter's group",
        "identifier": [{"system": "http://groups.org", "value": "12345"}],
    },
    _obs(
        "o1",
        category=VITALS,
        code=HEART_RATE,
        subject={"reference": "Patient/p1"},
        effectiveDateTime="2020-01-15T10:00:00Z",
        valueQuantity=_qty(72, "/min"),
        performer=[{"reference": "Practitioner/pr1"}],
        hasMember=[{"reference": "Observation/o2"}],
    ),
    _obs(
        "o2",
        category=VITALS,
        code=WEIGHT,
        subject={"reference": "Patient/p2"},
        effectivePeriod={"start": "2020-01-01", "end": "2020-01-31"},
        valueQuantity=_qty(80.5, "kg"),
        performer=[{"reference": "Practitioner/pr2"}],
    ),
    _obs(
        "o3",
        status="preliminary",
        code={"coding": [{"code": "local-1"}]},
        subject={"reference": "Patient/p3"},
        effectiveDateTime="2021-06",
        valueQuantity={"value": 100, "unit": "mg", "code": "mg"},
    ),
    _obs(
        "o4",
        code=HEART_RATE,
        subject={"reference": "Group/g1"},
        valueQuantity=_qty(60, "/min"),
        performer=[{"reference": "Practitioner/pr1"}],
    ),
    _obs(
        "o5",
        code=WEIGHT,
        subject={"reference": "http://testserver/fhir/Patient/p2"},
        effectivePeriod={"start": "2022-01-01"},
    ),
    _obs("o6", status="cancelled", code={"text": "no subject"}),
    _obs("o7", code=WEIGHT, subject={"identifier": {"system": MRN, "value": "12345"}, "type": "Patient"}),
    _obs("o8", code=WEIGHT, subject={"reference": "Patient/pdel"}),
    {
        "resourceType": "Provenance",
        "id": "prov1",
        "target": [{"reference": "Observation/o1"}],
        "recorded": "2020-01-15T10:00:00Z",
        "agent": [{"who": {"reference": "Practitioner/pr1"}}],
    },
    {
        "resourceType": "RiskAssessment",
        "id": "ra1",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "prediction": [{"probabilityDecimal": 100}],
    },
    {
        "resourceType": "RiskAssessment",
        "id": "ra2",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "prediction": [{"probabilityDecimal": 99.5}],
    },
    {
        "resourceType": "RiskAssessment",
        "id": "ra3",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "prediction": [{"probabilityDecimal": 100.5}],
    },
    {
        "resourceType": "RiskAssessment",
        "id": "ra4",
        "status": "final",
        "subject": {"reference": "Patient/p2"},
        "prediction": [{"probabilityDecimal": 100.004}],
    },
    {
        "resourceType": "RiskAssessment",
        "id": "ra5",
        "status": "final",
        "subject": {"reference": "Patient/p2"},
        "prediction": [{"probabilityDecimal": 50}],
    },
    {"resourceType": "ValueSet", "id": "vs1", "status": "active", "url": "http://acme.org/fhir/ValueSet/123"},
    {
        "resourceType": "ValueSet",
        "id": "vs2",
        "status": "active",
        "url": "http://acme.org/fhir/ValueSet/123/extra",
    },
    {"resourceType": "ValueSet", "id": "vs3", "status": "active", "url": "http://other.org/fhir/ValueSet/9"},
    {
        "resourceType": "Location",
        "id": "paris",
        "name": "Paris",
        "position": {"latitude": 48.8566, "longitude": 2.3522},
    },
    {
        "resourceType": "Location",
        "id": "london",
        "name": "London",
        "position": {"latitude": 51.5074, "longitude": -0.1278},
    },
    {"resourceType": "Location", "id": "nowhere", "name": "Nowhere"},
]
