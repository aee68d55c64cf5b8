"""Da Vinci US Drug Formulary 2.0.1 on `/{env}/directory`: every SHALL search and `_include` of the
`usdf-server` statement as the Inferno kit supersedes it (PayerInsurancePlan and Formulary as
InsurancePlan, FormularyItem as Basic, FormularyDrug as MedicationKnowledge, InsurancePlanLocation).

Data: the IG's examples (and one Location with a city, see `supplement`).
"""

from __future__ import annotations

from typing import Any

GUIDE = "formulary"
API = "directory"
SOURCES = ["ig/us-drug-formulary-2.0.1/example"]
EXPECTED_REJECTIONS: dict[str, str] = {}
KNOWN_FAILURES: dict[str, str] = {}


def supplement(stored: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    """The example InsurancePlanLocations give a state only; one with a city and postal code."""
    return [
        {
            "resourceType": "Location",
            "id": "links-hartford",
            "meta": {
                "profile": [
                    "http://hl7.org/fhir/us/davinci-drug-formulary/StructureDefinition/usdf-InsurancePlanLocation"
                ]
            },
            "name": "Hartford service area",
            "address": {"city": "Hartford", "state": "CT", "postalCode": "06101"},
        }
    ]


def test_shall_search(case: Any, conformance: Any) -> None:
    conformance(case, KNOWN_FAILURES)


def test_examples_load(dataset: Any) -> None:
    assert dataset.rejected == (EXPECTED_REJECTIONS if dataset.name == "examples" else {})
