"""Profile validation (`openpayer.fhir.profiles`) against the guides' own examples and the Inferno data.

Every example of the six IG packages (``../shared/ig/*/example/``) and every resource of the Inferno
reference-server bundles must validate without errors against the profiles it claims, except the few
instances listed in `EXPECTED_FAILURES` (wrong themselves; also listed in docs/apis.md). Then one negative
case per check, with the exact expression, and `$validate?profile=` over HTTP.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from openpayer.app import create_app
from openpayer.bootstrap import Services, build_services
from openpayer.config import Settings
from openpayer.fhir.outcome import Issue
from openpayer.fhir.profiles import known_profiles, profile_errors, validate_against_profiles
from openpayer.fhir.validation import validate_resource

REPO = Path(__file__).resolve().parents[3]
SHARED = (REPO / ".." / "shared").resolve()
EXAMPLES = sorted(
    p for p in SHARED.glob("ig/*/example/*.json") if not p.name.startswith(".")
)  # not .index.json
INFERNO = sorted(SHARED.glob("fhir-data/inferno-reference-server-data/*.json"))

CARIN = "http://hl7.org/fhir/us/carin-bb/StructureDefinition/"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
EOB_INPATIENT = CARIN + "C4BB-ExplanationOfBenefit-Inpatient-Institutional"

# (file name, "Type/id") -> why the instance itself does not conform
EXPECTED_FAILURES: dict[tuple[str, str], str] = {
    ("uscore_bundle_patient_908.json", "Patient/908"): (
        "derived from the US Core 8.0.0 examples: no Patient.gender, which US Core 3.1.1 and 6.1.0 "
        "(the versions shipped) require (1..1)"
    ),
}


def _read(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


def _example(relative: str) -> dict[str, Any]:
    path = SHARED / "ig" / relative
    if not path.exists():
        pytest.skip(f"reference data {path} is not available")
    resource: dict[str, Any] = _read(path)
    return resource


def _errors(issues: list[Issue]) -> list[tuple[tuple[str, ...], str]]:
    return [(i.expression, i.diagnostics) for i in issues if i.is_error]


def _inferno_resources() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path in INFERNO:
        bundle = _read(path)
        if bundle.get("resourceType") != "Bundle":
            yield path.name, f"{bundle.get('resourceType')}/{bundle.get('id')}", bundle
            continue
        for entry in bundle.get("entry", []):
            resource = entry.get("resource")
            if isinstance(resource, dict):
                yield path.name, f"{resource['resourceType']}/{resource.get('id')}", resource


# ---- the guides' examples and the Inferno data ------------------------------------------------------
@pytest.mark.parametrize("path", EXAMPLES, ids=[f"{p.parent.parent.name}/{p.name}" for p in EXAMPLES])
def test_every_ig_example_conforms_to_its_declared_profiles(path: Path) -> None:
    resource = _read(path)
    key = (path.name, f"{resource.get('resourceType')}/{resource.get('id')}")
    errors = _errors(validate_against_profiles(resource))
    if key in EXPECTED_FAILURES:
        assert errors, f"{key} is listed as wrong but now validates: drop it from EXPECTED_FAILURES"
    else:
        assert errors == []


def test_every_inferno_resource_conforms_to_its_declared_profiles() -> None:
    if not INFERNO:
        pytest.skip("the Inferno reference-server data is not available")
    failures: dict[tuple[str, str], list[tuple[tuple[str, ...], str]]] = {}
    count = 0
    for name, ref, resource in _inferno_resources():
        count += 1
        errors = _errors(validate_against_profiles(resource))
        if errors:
            failures[(name, ref)] = errors
    assert count > 800
    assert sorted(failures) == sorted(EXPECTED_FAILURES), failures


def test_the_expected_failure_is_the_missing_gender() -> None:
    bundle = _read(SHARED / "fhir-data/inferno-reference-server-data/uscore_bundle_patient_908.json")
    patient = bundle["entry"][0]["resource"]
    errors = profile_errors(patient)
    assert [e.expression for e in errors] == [("Patient.gender",)]
    assert "Patient.gender requires at least 1 value, found 0" in errors[0].diagnostics


# Instances the structural validator (base R4, run by every write and load) rejects: wrong themselves.
STRUCTURALLY_WRONG = {
    ("DiagnosticReport-cardiology-report.json", "DiagnosticReport/cardiology-report"): (
        "DiagnosticReport.presentedForm[0].hash",
        "'EQH/..AgME' is not valid base64Binary",
    ),
    ("uscore_bundle_patient_355.json", "Observation/3c766796-d8a0-480f-8215-f1e7e3afab21"): (
        "Observation.effectivePeriod.stop",
        "unknown element 'stop' in Period",
    ),
}


def test_the_structurally_wrong_instances_are_the_known_ones() -> None:
    if not EXAMPLES or not INFERNO:
        pytest.skip("the reference data is not available")
    found: dict[tuple[str, str], tuple[str, str]] = {}
    resources = [(p.name, _read(p)) for p in EXAMPLES] + [(n, r) for n, _, r in _inferno_resources()]
    for name, resource in resources:
        for issue in validate_resource(resource):
            if issue.is_error:
                ref = f"{resource.get('resourceType')}/{resource.get('id')}"
                found[(name, ref)] = (issue.expression[0], issue.diagnostics)
    assert found == STRUCTURALLY_WRONG


# ---- API ------------------------------------------------------------------------------------------
def test_known_profiles_maps_canonicals_to_types() -> None:
    profiles = known_profiles()
    assert profiles[EOB_INPATIENT] == "ExplanationOfBenefit"
    assert profiles[US_CORE + "us-core-patient"] == "Patient"
    assert profiles[US_CORE + "us-core-race"] == "Extension"
    formulary_drug = "http://hl7.org/fhir/us/davinci-drug-formulary/StructureDefinition/usdf-FormularyDrug"
    assert profiles[formulary_drug] == "MedicationKnowledge"
    assert len(profiles) > 130


def test_an_unknown_profile_is_a_warning_and_a_base_definition_is_the_structural_validator_s() -> None:
    patient = {"resourceType": "Patient", "meta": {"profile": ["http://example.org/StructureDefinition/x"]}}
    issues = validate_against_profiles(patient)
    assert [(i.severity, i.code, i.expression) for i in issues] == [
        ("warning", "not-supported", ("Patient.meta.profile[0]",))
    ]
    assert validate_against_profiles(patient, ["http://hl7.org/fhir/StructureDefinition/Patient"]) == []


def test_a_profile_of_another_type_is_an_error() -> None:
    issues = validate_against_profiles({"resourceType": "Patient"}, [EOB_INPATIENT])
    assert [(i.code, i.expression) for i in issues] == [("invalid", ("Patient",))]


def test_a_pinned_version_is_used_alone() -> None:
    patient = _example("us-core-6.1.0/example/Patient-example.json")
    assert _errors(validate_against_profiles(patient, [US_CORE + "us-core-patient|6.1.0"])) == []
    assert validate_against_profiles(patient, [US_CORE + "us-core-patient|9.9.9"])[0].severity == "warning"


# ---- negative cases -------------------------------------------------------------------------------
def _eob() -> dict[str, Any]:
    return _example("carin-bb-2.0.0/example/ExplanationOfBenefit-EOBInpatient1.json")


def test_missing_required_slice() -> None:
    eob = _eob()
    eob["adjudication"] = [
        a for a in eob["adjudication"] if a["category"]["coding"][0]["code"] != "benefitpaymentstatus"
    ]
    [(expression, diagnostics)] = _errors(validate_against_profiles(eob))
    assert expression == ("ExplanationOfBenefit.adjudication",)
    assert diagnostics.startswith(
        "C4BBExplanationOfBenefitInpatientInstitutional (" + EOB_INPATIENT + "|2.0.0)"
    )
    assert (
        "slice ExplanationOfBenefit.adjudication:benefitpaymentstatus requires at least 1, found 0"
        in diagnostics
    )


def test_wrong_fixed_value() -> None:
    bmi = _example("us-core-6.1.0/example/Observation-bmi.json")
    bmi["valueQuantity"]["code"] = "kg"
    [(expression, diagnostics)] = _errors(validate_against_profiles(bmi))
    assert expression == ("Observation.valueQuantity.code",)
    assert "must be exactly 'kg/m2'" in diagnostics


def test_pattern_mismatch() -> None:
    eob = _eob()
    eob["subType"]["coding"][0]["code"] = "outpatient"
    [(expression, diagnostics)] = _errors(validate_against_profiles(eob))
    assert expression == ("ExplanationOfBenefit.subType",)
    assert "ExplanationOfBenefit.subType must match the pattern" in diagnostics


def test_closed_slicing_violation() -> None:
    auth = _example("pdex-2.0.0/example/ExplanationOfBenefit-PDexPriorAuth1.json")
    other = {"category": {"coding": [{"system": "http://example.org/category", "code": "other"}]}}
    auth["item"][0]["adjudication"].append(other)
    errors = _errors(validate_against_profiles(auth))
    assert [e[0] for e in errors] == [
        ("ExplanationOfBenefit.item[0].adjudication[1].category",),  # the required binding
        ("ExplanationOfBenefit.item[0].adjudication[1]",),
    ]
    assert "matches none of the slices" in errors[1][1]
    assert "the slicing is closed" in errors[1][1]


def test_choice_type_restricted_by_a_closed_type_slicing() -> None:
    eob = _eob()
    info = next(i for i in eob["supportingInfo"] if i["category"]["coding"][0]["code"] == "admissionperiod")
    info["timingDate"] = info.pop("timingPeriod")["start"]
    position = eob["supportingInfo"].index(info)
    errors = _errors(validate_against_profiles(eob))
    assert (f"ExplanationOfBenefit.supportingInfo[{position}].timingDate",) in [e[0] for e in errors]


def test_binding_violation() -> None:
    eob = _eob()
    position = next(
        i
        for i, a in enumerate(eob["adjudication"])
        if a["category"]["coding"][0]["code"] == "benefitpaymentstatus"
    )
    eob["adjudication"][position]["reason"]["coding"][0]["code"] = "bogus"
    [(expression, diagnostics)] = _errors(validate_against_profiles(eob))
    assert expression == (f"ExplanationOfBenefit.adjudication[{position}].reason.coding[0].code",)
    assert "C4BBPayerBenefitPaymentStatus" in diagnostics


def test_extensible_binding_is_a_warning() -> None:
    patient = _example("us-core-6.1.0/example/Patient-example.json")
    patient["communication"] = [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "xx-bogus"}]}}]
    issues = validate_against_profiles(patient, [US_CORE + "us-core-patient|6.1.0"])
    assert _errors(issues) == []


def test_invariant_violation() -> None:
    patient = _example("us-core-6.1.0/example/Patient-example.json")
    patient["name"] = [{"text": "Amy Shaw"}]
    [(expression, diagnostics)] = _errors(
        validate_against_profiles(patient, [US_CORE + "us-core-patient|6.1.0"])
    )
    assert expression == ("Patient.name[0]",)
    assert "us-core-6:" in diagnostics


def test_invariant_on_the_resource() -> None:
    eob = _eob()
    eob["meta"]["profile"] = [EOB_INPATIENT]  # CARIN requires the version in the claim
    [(expression, diagnostics)] = _errors(validate_against_profiles(eob))
    assert expression == ("ExplanationOfBenefit",)
    assert "EOB-institutional-inpatient-meta-profile-version" in diagnostics


def test_extension_slice_cardinality() -> None:
    patient = _example("us-core-6.1.0/example/Patient-example.json")
    race = next(e for e in patient["extension"] if e["url"].endswith("/us-core-race"))
    patient["extension"].append(copy.deepcopy(race))
    [(expression, diagnostics)] = _errors(
        validate_against_profiles(patient, [US_CORE + "us-core-patient|6.1.0"])
    )
    assert expression == ("Patient.extension",)
    assert "slice Patient.extension:race allows at most 1, found 2" in diagnostics


def test_extension_validated_against_its_definition() -> None:
    patient = _example("us-core-6.1.0/example/Patient-example.json")
    position = next(i for i, e in enumerate(patient["extension"]) if e["url"].endswith("/us-core-race"))
    patient["extension"][position]["extension"].append({"url": "text", "valueString": "again"})
    birthsex = next(i for i, e in enumerate(patient["extension"]) if e["url"].endswith("/us-core-birthsex"))
    patient["extension"][birthsex]["valueCode"] = "X"
    errors = _errors(validate_against_profiles(patient, [US_CORE + "us-core-patient|6.1.0"]))
    assert [e[0] for e in errors] == [
        (f"Patient.extension[{position}].extension",),
        (f"Patient.extension[{birthsex}].valueCode",),
    ]
    assert "extension USCoreRaceExtension" in errors[0][1]
    assert "Extension.extension:text" in errors[0][1]
    assert "'X' is not in the required value set" in errors[1][1]


def test_bundle_entries_are_validated_against_their_own_profiles() -> None:
    eob = _eob()
    eob["subType"]["coding"][0]["code"] = "outpatient"
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": eob}]}
    assert [e[0] for e in _errors(validate_against_profiles(bundle))] == [
        ("Bundle.entry[0].resource.subType",)
    ]


def test_an_eob_validates_in_a_few_milliseconds() -> None:
    eob = _eob()
    validate_against_profiles(eob)  # compile
    started = time.perf_counter()
    for _ in range(20):
        validate_against_profiles(eob)
    assert (time.perf_counter() - started) / 20 < 0.05  # ~6 ms on a laptop; generous for CI


# ---- vendored data --------------------------------------------------------------------------------
def test_vendored_profiles_are_up_to_date() -> None:
    if not (SHARED / "ig").exists():
        pytest.skip("../shared/ig is not available")
    script = REPO / "scripts" / "vendor_ig_profiles.py"
    result = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


# ---- $validate over HTTP --------------------------------------------------------------------------
@pytest.fixture
def fhir_client(settings: Settings) -> Iterator[TestClient]:
    """The bearer-token guard off (`auth_enforce=False`, the engine-test switch): this is about $validate."""
    services: Services = build_services(settings.model_copy(update={"auth_enforce": False}))
    app = create_app(services.settings, services=services)
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as client:
        yield client
    services.engine.dispose()


def test_validate_with_a_profile_over_http(fhir_client: TestClient) -> None:
    headers = {"Content-Type": "application/fhir+json"}
    url = "/sandbox/fhir/ExplanationOfBenefit/$validate"
    eob = _eob()
    ok = fhir_client.post(url, params={"profile": EOB_INPATIENT}, json=eob, headers=headers)
    assert ok.status_code == 200, ok.text
    assert [i["severity"] for i in ok.json()["issue"]] == ["information"]

    eob["subType"]["coding"][0]["code"] = "outpatient"
    bad = fhir_client.post(url, params={"profile": EOB_INPATIENT}, json=eob, headers=headers)
    assert bad.status_code == 200
    [issue] = bad.json()["issue"]
    assert (issue["severity"], issue["code"], issue["expression"]) == (
        "error",
        "value",
        ["ExplanationOfBenefit.subType"],
    )

    del eob["meta"]
    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "resource", "resource": eob}, {"name": "profile", "valueUri": EOB_INPATIENT}],
    }
    via_parameters = fhir_client.post(url, json=parameters, headers=headers)
    assert [i["expression"] for i in via_parameters.json()["issue"]] == [
        ["ExplanationOfBenefit"],  # EOB-institutional-inpatient-meta-profile-version
        ["ExplanationOfBenefit.meta"],  # CARIN requires meta (with the profile claim)
        ["ExplanationOfBenefit.subType"],
    ]
    unknown = fhir_client.post(url, params={"profile": "http://example.org/x"}, json=_eob(), headers=headers)
    assert [i["severity"] for i in unknown.json()["issue"]] == ["warning"]
