"""Da Vinci PDex 2.0.0 on `/{env}/fhir`: every SHALL search, combination, `_include` and `_revinclude` of the
`pdex-server` statement (prior-authorization EOB, Provenance, MedicationDispense, Device and the US Core
types it repeats).

Data: the IG's examples (Bundle examples loaded entry by entry) and the Inferno reference server's PDex
bundle (patient 999).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

support = sys.modules["openpayer_conformance_support"]

GUIDE = "pdex"
API = "fhir"
SOURCES = ["ig/pdex-2.0.0/example", "fhir-data/inferno-reference-server-data/pdex_bundle_patient_999.json"]
EXPECTED_REJECTIONS: dict[str, str] = {}
KNOWN_FAILURES: dict[str, str] = {}
# Cases the statement itself gets wrong (not run; see docs/apis.md).
NO_INTENT = "MedicationDispense has no `intent` (element or SearchParameter) in R4"
STATEMENT_ERRORS = {
    "MedicationDispense?patient+intent": NO_INTENT,
    "MedicationDispense?patient+intent+status": NO_INTENT,
}
PROVENANCE_TYPES = [
    "AllergyIntolerance", "CarePlan", "CareTeam", "Coverage", "Device", "DiagnosticReport", "Goal",
    "Immunization", "MedicationRequest", "Observation", "Procedure",
]  # fmt: skip


def supplement(stored: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    """Links the examples lack, made from the examples: Provenances of the clinical types, a CarePlan
    period, a DocumentReference context period, a MedicationDispense of a stored Medication and a
    PractitionerRole endpoint."""
    out = support.provenances(stored, PROVENANCE_TYPES)
    plan = support.first(stored, "CarePlan")
    if plan is not None and "period" not in plan:
        out.append({**plan, "period": {"start": "2021-03-01", "end": "2021-09-01"}})
    document = support.first(stored, "DocumentReference")
    if document is not None:
        context = {**document.get("context", {}), "period": {"start": "2021-02-01T09:00:00Z"}}
        out.append({**document, "context": context})
    dispense, medication = support.first(stored, "MedicationDispense"), support.first(stored, "Medication")
    if dispense is not None and medication is not None:
        dispense = {k: v for k, v in dispense.items() if k != "medicationCodeableConcept"}
        out.append({**dispense, "medicationReference": {"reference": f"Medication/{medication['id']}"}})
    role, endpoint = support.first(stored, "PractitionerRole"), support.first(stored, "Endpoint")
    if role is not None and endpoint is not None:
        endpoints = [*role.get("endpoint", []), {"reference": f"Endpoint/{endpoint['id']}"}]
        out.append({**role, "endpoint": endpoints})
    return out


def test_shall_search(case: Any, conformance: Any) -> None:
    if case.id in STATEMENT_ERRORS:
        pytest.skip(f"the pdex-server statement is wrong: {STATEMENT_ERRORS[case.id]}")
    conformance(case, KNOWN_FAILURES)


def test_examples_load(dataset: Any) -> None:
    assert dataset.rejected == (EXPECTED_REJECTIONS if dataset.name == "examples" else {})
