"""Table-driven FHIR R4 search conformance (search.html), on SQLite and PostgreSQL.

Each row: (resource type, query, expected matches). The expectations were worked out by hand from the spec
against the corpus in search_corpus.py (stored dates are [low, high] ranges at their precision, in UTC).
"""

from __future__ import annotations

import pytest

P1, P2, P3, P4 = "Patient/p1", "Patient/p2", "Patient/p3", "Patient/p4"
OBS = {f"o{i}": f"Observation/o{i}" for i in range(1, 9)}
RA = {f"ra{i}": f"RiskAssessment/ra{i}" for i in range(1, 6)}
ALL_PATIENTS = {P1, P2, P3, P4}

CASES: list[tuple[str, str, set[str]]] = [
    # ---- string: case- and accent-insensitive prefix; :exact; :contains; :missing on repeating elements
    ("Patient", "name=chal", {P1, P3}),
    ("Patient", "name=CHALMERS", {P1, P3}),
    ("Patient", "family:exact=Chalmers", {P1}),
    ("Patient", "family:exact=chalmers", set()),
    ("Patient", "family=muller", {P2}),
    ("Patient", "family=MÜL", {P2}),
    ("Patient", "family:exact=Müller", {P2}),
    ("Patient", "given=zoe", {P2}),
    ("Patient", "name:contains=LMER", {P1, P3}),
    ("Patient", "name:contains=xyz", set()),
    ("Patient", "given:missing=true", {P3, P4}),
    ("Patient", "given:missing=false", {P1, P2}),
    ("Patient", "name:missing=true", {P4}),
    ("Patient", "name=peter,zoe", {P1, P2}),
    ("Patient", "name=peter&name=james", {P1}),
    ("Patient", "name=peter&name=zoe", set()),
    ("Patient", "address-city=paris", {P1}),
    # ---- token
    ("Patient", "gender=male", {P1}),
    ("Patient", "gender=male,female", {P1, P2}),
    ("Patient", "gender:not=male", {P2, P3, P4}),
    ("Patient", "gender:missing=true", {P4}),
    ("Patient", "identifier=12345", {P1, P3}),
    ("Patient", "identifier=http://hospital.org/mrn|12345", {P1}),
    ("Patient", "identifier=|999", {P2}),
    ("Patient", "identifier=|12345", set()),
    ("Patient", "identifier=http://other.org|", {P3}),
    ("Patient", r"identifier=a\,b\|c", {P4}),
    ("Patient", "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|12345", {P1}),
    ("Patient", "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|999", set()),
    ("Patient", "gender:in=http://hl7.org/fhir/ValueSet/administrative-gender", {P1, P2, P3}),
    ("Patient", "gender:not-in=http://hl7.org/fhir/ValueSet/administrative-gender", {P4}),
    ("Patient", "active=true", {P1}),
    ("Observation", "code=8867-4", {OBS["o1"], OBS["o4"]}),
    ("Observation", "code=http://loinc.org|8867-4", {OBS["o1"], OBS["o4"]}),
    ("Observation", "code=|local-1", {OBS["o3"]}),
    ("Observation", "code=http://loinc.org|local-1", set()),
    ("Observation", "code:text=heart", {OBS["o1"], OBS["o4"]}),
    ("Observation", "code:text=no subj", {OBS["o6"]}),
    ("Observation", "category:in=http://hl7.org/fhir/ValueSet/observation-category", {OBS["o1"], OBS["o2"]}),
    ("Observation", "status:not=final", {OBS["o3"], OBS["o6"]}),
    # ---- reference
    ("Observation", "subject=Patient/p1", {OBS["o1"]}),
    ("Observation", "subject=p1", {OBS["o1"]}),
    ("Observation", "subject=Patient/p2", {OBS["o2"], OBS["o5"]}),
    ("Observation", "subject:Patient=p2", {OBS["o2"], OBS["o5"]}),
    ("Observation", "subject=http://testserver/fhir/Patient/p1", {OBS["o1"]}),
    ("Observation", "subject=http://elsewhere.org/fhir/Patient/p1", set()),
    ("Observation", "subject=Group/g1", {OBS["o4"]}),
    ("Observation", "subject:Group=g1", {OBS["o4"]}),
    ("Observation", "subject:missing=true", {OBS["o6"]}),
    ("Observation", "subject:identifier=http://hospital.org/mrn|12345", {OBS["o7"]}),
    ("Observation", "patient=p1", {OBS["o1"]}),
    # ---- chains (forward), including target types that differ (Patient and Group both have `identifier`)
    ("Observation", "subject:Patient.name=chalmers", {OBS["o1"], OBS["o3"]}),
    ("Observation", "subject.name=peter", {OBS["o1"]}),  # Group has no `name`: only Patient targets
    ("Observation", "subject.identifier=12345", {OBS["o1"], OBS["o3"], OBS["o4"]}),
    ("Observation", "subject:Group.identifier=12345", {OBS["o4"]}),
    ("Observation", "subject:Patient.identifier=12345", {OBS["o1"], OBS["o3"]}),
    ("Observation", "subject:Patient.organization.name=acme", {OBS["o1"]}),
    ("Patient", "organization.partof.name=acme", {P2}),
    ("Patient", "general-practitioner:Practitioner.name=welby", {P1}),
    ("Observation", "subject:Patient.name=gone", set()),  # the target was deleted
    # ---- reverse chains
    ("Patient", "_has:Observation:subject:code=8867-4", {P1}),
    ("Patient", "_has:Observation:patient:code=29463-7", {P2}),
    ("Patient", "_has:Observation:subject:_has:Provenance:target:agent=Practitioner/pr1", {P1}),
    ("Practitioner", "_has:Observation:performer:status=final", {"Practitioner/pr1", "Practitioner/pr2"}),
    # ---- date: the nine prefixes against [low, high] ranges, partial dates, Periods, time zones
    ("Patient", "birthdate=1980", {P2, P3}),
    ("Patient", "birthdate=1980-05", {P3}),
    ("Patient", "birthdate=eq1974-12-25", {P1}),
    ("Patient", "birthdate=ne1980", {P1, P4}),
    ("Patient", "birthdate=lt1980-05", {P1, P2}),
    ("Patient", "birthdate=gt1980-05", {P2, P4}),
    ("Patient", "birthdate=ge1980-05-05", {P2, P3, P4}),
    ("Patient", "birthdate=le1980-05-05", {P1, P2, P3}),
    ("Patient", "birthdate=sa1980", {P4}),
    ("Patient", "birthdate=eb1980", {P1}),
    ("Patient", "birthdate=ap1980-05-05", {P2, P3}),
    ("Patient", "birthdate=ge1980&birthdate=lt1985", {P2, P3}),
    ("Patient", "birthdate:missing=true", set()),
    ("Observation", "date=2020-01", {OBS["o1"], OBS["o2"]}),
    ("Observation", "date=2020-01-15", {OBS["o1"]}),
    ("Observation", "date=2020-01-15T11:00:00+01:00", {OBS["o1"]}),
    ("Observation", "date=2020-01-15T10:00:00+01:00", set()),
    ("Observation", "date=2020-01-15T10:00", {OBS["o1"]}),
    ("Observation", "date=sa2019-12-31", {OBS["o1"], OBS["o2"], OBS["o3"], OBS["o5"]}),
    ("Observation", "date=sa2020-01-15", {OBS["o3"], OBS["o5"]}),
    ("Observation", "date=eb2020-02", {OBS["o1"], OBS["o2"]}),
    ("Observation", "date=eb2020-01-20", {OBS["o1"]}),
    ("Observation", "date=gt2020-01-20", {OBS["o2"], OBS["o3"], OBS["o5"]}),
    ("Observation", "date=lt2020-01-15", {OBS["o2"]}),
    ("Observation", "date=gt2030", {OBS["o5"]}),
    ("Observation", "date=ne2020-01", {OBS["o3"], OBS["o5"]}),
    ("Observation", "_lastUpdated=gt2000-01-01", {OBS[f"o{i}"] for i in range(1, 9)}),
    ("Observation", "_lastUpdated=lt2000-01-01", set()),
    # ---- number (implicit precision ranges)
    ("RiskAssessment", "probability=100", {RA["ra1"], RA["ra2"], RA["ra4"]}),
    ("RiskAssessment", "probability=100.00", {RA["ra1"], RA["ra4"]}),
    ("RiskAssessment", "probability=gt100", {RA["ra3"], RA["ra4"]}),
    ("RiskAssessment", "probability=ge100", {RA["ra1"], RA["ra3"], RA["ra4"]}),
    ("RiskAssessment", "probability=lt100", {RA["ra2"], RA["ra5"]}),
    ("RiskAssessment", "probability=le100", {RA["ra1"], RA["ra2"], RA["ra5"]}),
    ("RiskAssessment", "probability=ne100", {RA["ra3"], RA["ra5"]}),
    ("RiskAssessment", "probability=ap100", {RA["ra1"], RA["ra2"], RA["ra3"], RA["ra4"]}),
    ("RiskAssessment", "probability=sa100", {RA["ra3"], RA["ra4"]}),
    ("RiskAssessment", "probability=eb100", {RA["ra2"], RA["ra5"]}),
    # ---- quantity
    ("Observation", "value-quantity=72", {OBS["o1"]}),
    ("Observation", "value-quantity=gt75", {OBS["o2"], OBS["o3"]}),
    ("Observation", "value-quantity=lt70", {OBS["o4"]}),
    ("Observation", "value-quantity=80.5||kg", {OBS["o2"]}),
    ("Observation", "value-quantity=100||mg", {OBS["o3"]}),
    ("Observation", "value-quantity=100|http://unitsofmeasure.org|mg", set()),
    ("Observation", "value-quantity=72|http://unitsofmeasure.org|/min", {OBS["o1"]}),
    ("Observation", "value-quantity=ge60|http://unitsofmeasure.org|/min", {OBS["o1"], OBS["o4"]}),
    ("Observation", "value-quantity:missing=true", {OBS["o5"], OBS["o6"], OBS["o7"], OBS["o8"]}),
    # ---- composite (components on the same resource)
    ("Observation", "code-value-quantity=http://loinc.org|8867-4$gt70", {OBS["o1"]}),
    ("Observation", "code-value-quantity=http://loinc.org|8867-4$lt70", {OBS["o4"]}),
    ("Observation", "code-value-quantity=8867-4$gt70,29463-7$gt70", {OBS["o1"], OBS["o2"]}),
    ("Observation", "code-value-quantity:missing=true", {OBS["o5"], OBS["o6"], OBS["o7"], OBS["o8"]}),
    (
        "Observation",
        "status=final,preliminary&subject:missing=false&value-quantity=gt65",
        {OBS["o1"], OBS["o2"], OBS["o3"]},
    ),
    ("Patient", "_id:not=p1", {P2, P3, P4}),
    # ---- uri
    ("ValueSet", "url=http://acme.org/fhir/ValueSet/123", {"ValueSet/vs1"}),
    ("ValueSet", "url:below=http://acme.org/fhir", {"ValueSet/vs1", "ValueSet/vs2"}),
    ("ValueSet", "url:above=http://acme.org/fhir/ValueSet/123/_history/5", {"ValueSet/vs1"}),
    ("ValueSet", "url:missing=false", {"ValueSet/vs1", "ValueSet/vs2", "ValueSet/vs3"}),
    # ---- special: near (km by default)
    ("Location", "near=48.85|2.35|10|km", {"Location/paris"}),
    ("Location", "near=48.85|2.35|500|km", {"Location/paris", "Location/london"}),
    ("Location", "near=48.85|2.35|300|km", {"Location/paris"}),
    ("Location", "near=48.85|2.35|250|[mi_i]", {"Location/paris", "Location/london"}),
    ("Location", "near=48.85|2.35", {"Location/paris"}),
    ("Location", "near:missing=true", {"Location/nowhere"}),
    # ---- common parameters
    ("Patient", "_id=p1,p2", {P1, P2}),
    ("Patient", "_id=pdel", set()),
    ("Patient", "_tag=http://acme.org/tags|vip", {P1}),
    ("Patient", "_profile=http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient", {P1}),
    ("Patient", "_security=R", {P1}),
    ("Patient", "_source=http://src.example/feed", {P1}),
    (None, "_type=Patient,Practitioner&_id=p1,pr1,o1", {P1, "Practitioner/pr1"}),
    (None, "_id=o1,p4", {OBS["o1"], P4}),
    (None, "_tag=http://acme.org/tags|vip", {P1}),
]


@pytest.mark.parametrize(("rtype", "query", "expected"), CASES, ids=[f"{c[0]}?{c[1]}" for c in CASES])
def test_conformance(store, rtype: str | None, query: str, expected: set[str]) -> None:
    result = store.search(rtype, query + "&_count=200", strict=True)
    assert store.ids(result) == expected
    assert result.total == len(expected)
