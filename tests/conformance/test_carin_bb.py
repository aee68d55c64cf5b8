"""CARIN for Blue Button 2.0.0 on `/{env}/fhir`: every SHALL search and include of the `c4bb` statement.

Data: the IG's examples and the Inferno reference server's CARIN bundle (patient 888).
"""

from __future__ import annotations

import sys
from typing import Any

support = sys.modules["openpayer_conformance_support"]

GUIDE = "carin-bb"
API = "fhir"
SOURCES = [
    "ig/carin-bb-2.0.0/example",
    "fhir-data/inferno-reference-server-data/carin_bundle_patient_888.json",
]
EXPECTED_REJECTIONS: dict[str, str] = {}
KNOWN_FAILURES: dict[str, str] = {}
# The combinations a CARIN client makes (the statement lists the parameters, not these combinations).
EXTRA_CASES = [
    support.Case("search", "ExplanationOfBenefit", ("patient", "type")),
    support.Case("search", "ExplanationOfBenefit", ("patient", "service-date")),
    support.Case("search", "ExplanationOfBenefit", ("patient", "_lastUpdated")),
    support.Case("search", "ExplanationOfBenefit", ("patient", "identifier")),
]


def test_shall_search(case: Any, conformance: Any) -> None:
    conformance(case, KNOWN_FAILURES)


def test_examples_load(dataset: Any) -> None:
    assert dataset.rejected == (EXPECTED_REJECTIONS if dataset.name == "examples" else {})
