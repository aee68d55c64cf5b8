"""US Core 3.1.1 and 6.1.0 on `/{env}/fhir`: every SHALL search, combination and `_revinclude` of both server
statements (the union; a case listed by both runs once), on one store.

Data: the examples of both packages (6.1.0 loaded after 3.1.1, so an id both use holds the 6.1.0 example)
and the Inferno reference server's US Core patients 85, 355, 907 and 908.
"""

from __future__ import annotations

import sys
from typing import Any

support = sys.modules["openpayer_conformance_support"]

GUIDE = "us-core-6.1.0"
GUIDES = ["us-core-6.1.0", "us-core-3.1.1"]
API = "fhir"
SOURCES = [
    "ig/us-core-3.1.1/example",
    "ig/us-core-6.1.0/example",
    "fhir-data/inferno-reference-server-data/uscore_bundle_patient_85.json",
    "fhir-data/inferno-reference-server-data/uscore_bundle_patient_355.json",
    "fhir-data/inferno-reference-server-data/uscore_bundle_patient_907.json",
    "fhir-data/inferno-reference-server-data/uscore_bundle_patient_908.json",
]
# Examples that are themselves wrong (the validator rejects them; see docs/apis.md).
EXPECTED_REJECTIONS: dict[str, str] = {
    # US Core 3.1.1: presentedForm.hash "EQH/..AgME" is a placeholder, not base64 (6.1.0 loads over it).
    "DiagnosticReport-cardiology-report.json": "'EQH/..AgME' is not valid base64Binary",
    # Inferno patient 355: an Observation.effectivePeriod with "stop" (no such Period element); the
    # transaction is all-or-nothing, so none of the bundle's 473 entries is loaded.
    "uscore_bundle_patient_355.json": (
        "Bundle.entry[266] (POST Observation): unknown element 'stop' in Period"
    ),
}
KNOWN_FAILURES: dict[str, str] = {}


def supplement(stored: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    """Provenances for the types no example Provenance targets (so `_revinclude=Provenance:target` runs)."""
    return support.provenances(stored, ["Device", "Goal", "ServiceRequest"])


def test_shall_search(case: Any, conformance: Any) -> None:
    conformance(case, KNOWN_FAILURES)


def test_examples_load(dataset: Any) -> None:
    assert dataset.rejected == (EXPECTED_REJECTIONS if dataset.name == "examples" else {})


def test_patient_is_found_by_id_relative_and_absolute_reference(runner: Any, dataset: Any) -> None:
    """Clients (the Inferno kits among them) search `patient=85`, `patient=Patient/85` or the absolute URL."""
    for rtype in ("Observation", "Condition", "Encounter", "Procedure"):
        patients = sorted({k for r in dataset.of_type(rtype) for k in runner.targets(r, "patient")})
        if not patients:
            continue
        pid = patients[0][1]
        expected = {
            (rtype, r["id"])
            for r in dataset.of_type(rtype)
            if runner.satisfies(r, "patient", f"Patient/{pid}")
        }
        assert expected
        for form in (pid, f"Patient/{pid}", f"http://testserver/{dataset.env}/fhir/Patient/{pid}"):
            matched, _ = runner.ask(rtype, [("patient", form)])
            assert matched == expected, form
