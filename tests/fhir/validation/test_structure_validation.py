"""Structural validation against the R4 StructureDefinitions: valid corpora pass, each check fires exactly."""

from __future__ import annotations

import copy
import random
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from openpayer.fhir import definitions
from openpayer.fhir.validation import known_resource_types, validate_resource
from openpayer.fhir.validation.primitives import SPEC_REGEX
from openpayer.fhir.validation.structure import MAX_DEPTH, MAX_ISSUES

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "fhir"
SHARED = (REPO / "../shared").resolve()


def _load(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


def found(resource: object) -> list[tuple[str, str]]:
    """(code, expression) of every issue, in report order."""
    issues = validate_resource(resource)
    assert all(issue.severity == "error" for issue in issues)
    return [(issue.code, issue.expression[0] if issue.expression else "") for issue in issues]


# -- valid instances -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.name)
def test_fixture_instances_are_valid(path: Path) -> None:
    assert validate_resource(_load(path)) == []


def _corpus() -> list[Path]:
    if not SHARED.is_dir():
        return []
    patterns = [
        "fhir-data/inferno-reference-server-data/*.json",
        "fhir-data/synthea-r4-sample/*.json",
        "fhir-data/carin-bb-test-kit-fixtures/*.json",
        "fhir-data/pdex-test-kit-fixtures/*.json",
        "ig/*/example/*.json",
    ]
    skip = {"c4bb_patient_stub.json"}  # invalid JSON upstream (see ../shared/SOURCES.md)
    # `.index.json` files are package indexes, not resources.
    paths = (p for pattern in patterns for p in sorted(SHARED.glob(pattern)))
    return [p for p in paths if p.name not in skip and not p.name.startswith(".")]


# Upstream instances that are genuinely invalid against base R4, with the exact issues expected.
KNOWN_INVALID: dict[str, list[tuple[str, str]]] = {
    # Period has start/end; Synthea-era data wrote "stop".
    "uscore_bundle_patient_355.json": [("structure", "Bundle.entry[266].resource.effectivePeriod.stop")],
    # US Core 3.1.1 example: Attachment.hash "EQH/..AgME" is not base64 ('.' is not a base64 character).
    "us-core-3.1.1/example/DiagnosticReport-cardiology-report.json": [
        ("value", "DiagnosticReport.presentedForm[0].hash")
    ],
    # CARIN test kit's patient fixture: Address.period (max 1) written as an array.
    "c4bb_patient_example.json": [("structure", "Patient.address[0].period")],
    # Deliberately non-conformant fixture of the CARIN test kit.
    "c4bb_patient_error_example.json": [
        ("structure", "Patient.deceasedBoolean"),  # "false" as a string
        ("structure", "Patient.address[0].period"),  # an array for a max-1 element
        ("structure", "Patient.communication[0].language"),  # a string for a CodeableConcept
    ],
}


def _known(path: Path) -> list[tuple[str, str]]:
    relative = path.relative_to(SHARED).as_posix()
    for suffix, issues in KNOWN_INVALID.items():
        if relative.endswith(suffix):
            return issues
    return []


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"reference data folder {SHARED} is absent")
@pytest.mark.parametrize("path", _corpus(), ids=lambda p: p.relative_to(SHARED).as_posix())
def test_upstream_instances_are_valid_or_known(path: Path) -> None:
    assert found(_load(path)) == _known(path)


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"reference data folder {SHARED} is absent")
def test_blue_button_eob_omits_required_base_elements() -> None:
    """CMS Blue Button 2.0 responses leave out EOB elements that base R4 requires (min 1)."""
    eob = _load(SHARED / "fhir-data/cms-bluebutton-v2-samples/eob_read_carrier_v2.json")
    assert found(eob) == [
        ("required", "ExplanationOfBenefit.insurance[0].focal"),
        ("required", "ExplanationOfBenefit.insurer"),
        ("required", "ExplanationOfBenefit.provider"),
        ("required", "ExplanationOfBenefit.outcome"),
    ]


# -- invalid instances: one check each --------------------------------------------------------------


def obs(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "weight"}, **extra}


def pat(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", **extra}


CONTAINED_PATIENT = {"resourceType": "Patient", "id": "p1"}

INVALID: list[tuple[str, object, list[tuple[str, str]]]] = [
    # resource level
    ("non-dict input: list", [], [("structure", "")]),
    ("non-dict input: string", "Patient", [("structure", "")]),
    ("non-dict input: null", None, [("structure", "")]),
    ("missing resourceType", {"id": "1"}, [("required", "")]),
    ("unknown resourceType", {"resourceType": "Pateint"}, [("invalid", "")]),
    ("abstract resourceType", {"resourceType": "DomainResource"}, [("invalid", "")]),
    ("R4B-only resourceType", {"resourceType": "SubscriptionStatus"}, [("invalid", "")]),
    ("resourceType not a string", {"resourceType": ["Patient"]}, [("invalid", "")]),
    ("bad id", pat(id="a_b"), [("value", "Patient.id")]),
    ("id too long", pat(id="a" * 65), [("value", "Patient.id")]),
    # unknown elements
    ("unknown element", pat(nmae=[{"family": "x"}]), [("structure", "Patient.nmae")]),
    ("unknown element in datatype", pat(name=[{"famly": "x"}]), [("structure", "Patient.name[0].famly")]),
    (
        "unknown element in backbone",
        pat(contact=[{"name": {"family": "x"}, "nickname": "y"}]),
        [("structure", "Patient.contact[0].nickname")],
    ),
    (
        "resourceType inside a datatype",
        pat(name=[{"resourceType": "HumanName", "text": "x"}]),
        [("structure", "Patient.name[0].resourceType")],
    ),
    ("_ sibling of a complex element", pat(_name=[{"id": "x"}]), [("structure", "Patient._name")]),
    ("_ sibling of an unknown element", pat(_foo={"id": "x"}), [("structure", "Patient._foo")]),
    # required
    (
        "missing required",
        {"resourceType": "Observation", "code": {"text": "x"}},
        [("required", "Observation.status")],
    ),
    (
        "missing required in backbone",
        pat(link=[{"type": "seealso"}]),
        [("required", "Patient.link[0].other")],
    ),
    (
        "missing required in datatype",
        pat(extension=[{"valueString": "x"}]),
        [("required", "Patient.extension[0].url")],
    ),
    (
        "missing required choice",
        {
            "resourceType": "MedicationAdministration",
            "status": "completed",
            "subject": {"reference": "Patient/1"},
            "effectiveDateTime": "2020",
        },
        [("required", "MedicationAdministration.medication")],
    ),
    # cardinality and JSON shape
    ("array for max 1", pat(gender=["male"]), [("structure", "Patient.gender")]),
    ("object for max *", pat(name={"family": "x"}), [("structure", "Patient.name")]),
    ("string for max *", pat(name=[{"given": "Ann"}]), [("structure", "Patient.name[0].given")]),
    ("null value", pat(gender=None), [("structure", "Patient.gender")]),
    ("null in array", pat(name=[{"given": ["a", None]}]), [("structure", "Patient.name[0].given[1]")]),
    (
        "max 0 in SimpleQuantity profile",
        obs(valueRange={"low": {"value": 1, "comparator": "<"}}),
        [("structure", "Observation.valueRange.low.comparator")],
    ),
    # empty values
    ("empty string", pat(name=[{"family": ""}]), [("value", "Patient.name[0].family")]),
    ("empty object", pat(name=[{}]), [("structure", "Patient.name[0]")]),
    ("empty array", pat(name=[]), [("structure", "Patient.name")]),
    ("empty nested object", pat(maritalStatus={}), [("structure", "Patient.maritalStatus")]),
    ("empty primitive extension", pat(gender="male", _gender={}), [("structure", "Patient.gender")]),
    # choice types
    (
        "choice with two values",
        obs(valueString="a", valueBoolean=True),
        [("structure", "Observation.valueBoolean")],
    ),
    (
        "choice with a disallowed type",
        obs(valueMoney={"value": 1}),
        [("structure", "Observation.valueMoney")],
    ),
    ("choice with unknown suffix", obs(valueFoo="x"), [("structure", "Observation.valueFoo")]),
    ("choice base name", obs(value="x"), [("structure", "Observation.value")]),
    # primitive formats and JSON types
    ("bad date", pat(birthDate="1970-13-01"), [("value", "Patient.birthDate")]),
    ("date with no such day", pat(birthDate="2023-02-29"), [("value", "Patient.birthDate")]),
    (
        "dateTime with time but no zone",
        obs(effectiveDateTime="2020-01-01T10:00:00"),
        [("value", "Observation.effectiveDateTime")],
    ),
    ("instant without timezone", obs(issued="2020-01-01T10:00:00"), [("value", "Observation.issued")]),
    ("instant without seconds", obs(issued="2020-01-01T10:00Z"), [("value", "Observation.issued")]),
    ("instant as a date", obs(issued="2020-01-01"), [("value", "Observation.issued")]),
    ("bad time", obs(valueTime="25:00:00"), [("value", "Observation.valueTime")]),
    ("integer as string", pat(multipleBirthInteger="5"), [("structure", "Patient.multipleBirthInteger")]),
    ("integer as decimal", pat(multipleBirthInteger=2.0), [("value", "Patient.multipleBirthInteger")]),
    ("integer out of range", pat(multipleBirthInteger=2**31), [("value", "Patient.multipleBirthInteger")]),
    ("boolean as string", pat(active="true"), [("structure", "Patient.active")]),
    ("boolean as number", pat(active=1), [("structure", "Patient.active")]),
    (
        "decimal as string",
        obs(valueQuantity={"value": "1.5"}),
        [("structure", "Observation.valueQuantity.value")],
    ),
    (
        "decimal as boolean",
        obs(valueQuantity={"value": True}),
        [("structure", "Observation.valueQuantity.value")],
    ),
    ("string as number", pat(name=[{"family": 42}]), [("structure", "Patient.name[0].family")]),
    (
        "positiveInt zero",
        {
            "resourceType": "Claim",
            "status": "active",
            "type": {"text": "t"},
            "use": "claim",
            "patient": {"reference": "Patient/1"},
            "created": "2020-01-01",
            "provider": {"reference": "Organization/1"},
            "priority": {"text": "normal"},
            "insurance": [{"sequence": 0, "focal": True, "coverage": {"reference": "Coverage/1"}}],
        },
        [("value", "Claim.insurance[0].sequence")],
    ),
    ("unsignedInt negative", pat(photo=[{"size": -1}]), [("value", "Patient.photo[0].size")]),
    ("code with leading space", pat(gender=" male"), [("value", "Patient.gender")]),
    (
        "code with inner double space",
        obs(valueCodeableConcept={"coding": [{"code": "a  b"}]}),
        [("value", "Observation.valueCodeableConcept.coding[0].code")],
    ),
    (
        "uri with whitespace",
        pat(identifier=[{"system": "http://x y", "value": "1"}]),
        [("value", "Patient.identifier[0].system")],
    ),
    (
        "bad oid",
        pat(extension=[{"url": "http://e", "valueOid": "1.2.3"}]),
        [("value", "Patient.extension[0].valueOid")],
    ),
    (
        "bad uuid",
        pat(extension=[{"url": "http://e", "valueUuid": "urn:uuid:ABC"}]),
        [("value", "Patient.extension[0].valueUuid")],
    ),
    ("bad base64", pat(photo=[{"data": "abc"}]), [("value", "Patient.photo[0].data")]),
    (
        "string over 1 MB",
        pat(name=[{"family": "x" * (1024 * 1024 + 1)}]),
        [("too-long", "Patient.name[0].family")],
    ),
    (
        "narrative not a div",
        pat(text={"status": "generated", "div": "hello"}),
        [("value", "Patient.text.div")],
    ),
    # required bindings
    ("bad code in required binding", pat(gender="mle"), [("code-invalid", "Patient.gender")]),
    ("bad Observation.status", obs(status="done"), [("code-invalid", "Observation.status")]),
    (
        "bad code in contentReference element",
        {
            "resourceType": "Questionnaire",
            "status": "draft",
            "item": [{"linkId": "1", "type": "group", "item": [{"linkId": "2", "type": "bogus"}]}],
        },
        [("code-invalid", "Questionnaire.item[0].item[0].type")],
    ),
    (
        "bad code in CodeableConcept required binding",
        {
            "resourceType": "Condition",
            "subject": {"reference": "Patient/1"},
            "clinicalStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "gone"}
                ]
            },
        },
        [("code-invalid", "Condition.clinicalStatus.coding[0].code")],
    ),
    (
        "CodeableConcept with no coding from the value set",
        {
            "resourceType": "Condition",
            "subject": {"reference": "Patient/1"},
            "clinicalStatus": {"coding": [{"system": "http://snomed.info/sct", "code": "55561003"}]},
        },
        [("code-invalid", "Condition.clinicalStatus")],
    ),
    # references
    (
        "bad reference format",
        obs(subject={"reference": "Patient/"}),
        [("value", "Observation.subject.reference")],
    ),
    (
        "reference with spaces",
        obs(subject={"reference": "Patient/a b"}),
        [("value", "Observation.subject.reference")],
    ),
    (
        "reference to unknown type",
        obs(subject={"reference": "Pateint/1"}),
        [("value", "Observation.subject.reference")],
    ),
    (
        "bad urn:uuid reference",
        obs(subject={"reference": "urn:uuid:123"}),
        [("value", "Observation.subject.reference")],
    ),
    (
        "unresolved contained reference",
        obs(subject={"reference": "#p1"}),
        [("invariant", "Observation.subject.reference")],
    ),
    (
        "wrong reference target type",
        obs(subject={"reference": "Practitioner/1"}),
        [("invalid", "Observation.subject.reference")],
    ),
    (
        "wrong target type in an absolute URL",
        obs(subject={"reference": "https://ehr.example/fhir/Medication/1"}),
        [("invalid", "Observation.subject.reference")],
    ),
    (
        "wrong target type of a contained resource",
        obs(contained=[{"resourceType": "Practitioner", "id": "p1"}], subject={"reference": "#p1"}),
        [("invalid", "Observation.subject.reference")],
    ),
    (
        "Reference.type disagrees with the reference",
        obs(subject={"reference": "Patient/1", "type": "Group"}),
        [("invalid", "Observation.subject.type")],
    ),
    (
        "Reference.type outside the targets",
        obs(subject={"type": "Practitioner", "display": "Dr X"}),
        [("invalid", "Observation.subject.type")],
    ),
    (
        "conditional reference outside a transaction",
        obs(subject={"reference": "Patient?identifier=x|1"}),
        [("value", "Observation.subject.reference")],
    ),
    # contained resources
    (
        "nested contained",
        obs(
            contained=[
                {
                    "resourceType": "Patient",
                    "id": "p1",
                    "contained": [{"resourceType": "Patient", "id": "p2"}],
                }
            ],
            subject={"reference": "#p1"},
        ),
        [("invariant", "Observation.contained[0].contained")],
    ),
    (
        "contained not referenced",
        obs(contained=[CONTAINED_PATIENT]),
        [("invariant", "Observation.contained[0]")],
    ),
    (
        "contained with versionId",
        obs(contained=[{**CONTAINED_PATIENT, "meta": {"versionId": "1"}}], subject={"reference": "#p1"}),
        [("invariant", "Observation.contained[0].meta.versionId")],
    ),
    (
        "contained with security label",
        obs(
            contained=[{**CONTAINED_PATIENT, "meta": {"security": [{"code": "R"}]}}],
            subject={"reference": "#p1"},
        ),
        [("invariant", "Observation.contained[0].meta.security")],
    ),
    (
        "duplicate contained id",
        obs(contained=[CONTAINED_PATIENT, CONTAINED_PATIENT], subject={"reference": "#p1"}),
        [("duplicate", "Observation.contained[1].id"), ("invariant", "Observation.contained[1]")],
    ),
    (
        "invalid contained resource",
        obs(contained=[{**CONTAINED_PATIENT, "gender": "x"}], subject={"reference": "#p1"}),
        [("code-invalid", "Observation.contained[0].gender")],
    ),
    (
        "contained without resourceType",
        obs(contained=[{"id": "p1"}], subject={"reference": "#p1"}),
        [("required", "Observation.contained[0]")],
    ),
    # invariants
    (
        "ext-1: neither value nor extensions",
        pat(extension=[{"url": "http://e"}]),
        [("invariant", "Patient.extension[0]")],
    ),
    (
        "ext-1: both value and extensions",
        pat(
            extension=[
                {"url": "http://e", "valueString": "a", "extension": [{"url": "x", "valueString": "b"}]}
            ]
        ),
        [("invariant", "Patient.extension[0]")],
    ),
    (
        "obs-6: dataAbsentReason with a value",
        obs(valueString="a", dataAbsentReason={"text": "n/a"}),
        [("invariant", "Observation.dataAbsentReason")],
    ),
    (
        "obs-7: value with a component of the same code",
        obs(
            code={"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            valueString="x",
            component=[
                {"code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]}, "valueString": "y"}
            ],
        ),
        [("invariant", "Observation")],
    ),
    (
        "bdl-1 and bdl-2 outside a searchset",
        {
            "resourceType": "Bundle",
            "type": "collection",
            "total": 1,
            "entry": [{"resource": {"resourceType": "Patient"}, "search": {"mode": "match"}}],
        },
        [("invariant", "Bundle.total"), ("invariant", "Bundle.entry[0].search")],
    ),
    (
        "bdl-3: transaction entry without request",
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": {"resourceType": "Patient"}}],
        },
        [("invariant", "Bundle.entry[0]")],
    ),
    (
        "bdl-5 and bdl-7",
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {
                    "fullUrl": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0",
                    "resource": {"resourceType": "Patient"},
                },
                {
                    "fullUrl": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0",
                    "resource": {"resourceType": "Patient"},
                },
                {"fullUrl": "https://x/Patient/1"},
            ],
        },
        [("invariant", "Bundle.entry[1].fullUrl"), ("invariant", "Bundle.entry[2]")],
    ),
    (
        "bdl-9..11: bare document",
        {"resourceType": "Bundle", "type": "document", "entry": [{"resource": {"resourceType": "Patient"}}]},
        [("invariant", "Bundle"), ("invariant", "Bundle"), ("invariant", "Bundle")],
    ),
    # nested resources are validated with their own type
    (
        "invalid Bundle entry resource",
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": {"resourceType": "Observation", "status": "x", "code": {"text": "t"}}}],
        },
        [("code-invalid", "Bundle.entry[0].resource.status")],
    ),
    (
        "unknown type in Bundle entry",
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Nope"}}]},
        [("invalid", "Bundle.entry[0].resource")],
    ),
    (
        "Bundle entry resource not an object",
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": "Patient/1"}]},
        [("structure", "Bundle.entry[0].resource")],
    ),
    (
        "invalid Parameters resource",
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "p", "resource": {"resourceType": "Patient", "x": 1}}],
        },
        [("structure", "Parameters.parameter[0].resource.x")],
    ),
    (
        "Bundle.entry.response.outcome of another type",
        {
            "resourceType": "Bundle",
            "type": "batch-response",
            "entry": [{"response": {"status": "200", "outcome": {"resourceType": "Patient"}}}],
        },
        [("invalid", "Bundle.entry[0].response.outcome")],
    ),
    # primitive extension siblings
    ("_ sibling not an object", pat(gender="male", _gender="x"), [("structure", "Patient.gender")]),
    (
        "_ sibling misaligned",
        pat(name=[{"given": ["a"], "_given": [None, {"id": "g"}]}]),
        [("structure", "Patient.name[0].given")],
    ),
    (
        "_ sibling with unknown content",
        pat(gender="male", _gender={"value": "x"}),
        [("structure", "Patient.gender.value")],
    ),
    (
        "_ sibling with invalid extension",
        pat(birthDate="2000", _birthDate={"extension": [{"valueString": "x"}]}),
        [("required", "Patient.birthDate.extension[0].url")],
    ),
    (
        "null without _ sibling entry",
        pat(name=[{"given": [None], "_given": [None]}]),
        [("structure", "Patient.name[0].given[0]")],
    ),
]


@pytest.mark.parametrize(
    ("resource", "expected"), [(r, e) for _, r, e in INVALID], ids=[n for n, _, _ in INVALID]
)
def test_invalid_instances_report_exact_issues(resource: object, expected: list[tuple[str, str]]) -> None:
    assert found(resource) == expected


# -- valid edge forms ------------------------------------------------------------------------------

VALID: list[tuple[str, dict[str, Any]]] = [
    ("only resourceType", pat()),
    (
        "extension-only primitive",
        pat(_birthDate={"extension": [{"url": "http://e", "valueCode": "unknown"}]}),
    ),
    (
        "aligned _ array with nulls",
        pat(
            name=[
                {
                    "given": ["a", None, "c"],
                    "_given": [None, {"extension": [{"url": "http://e", "valueString": "b"}]}, None],
                }
            ]
        ),
    ),
    (
        "required met by _ sibling",
        {
            "resourceType": "Observation",
            "code": {"text": "x"},
            "_status": {"extension": [{"url": "http://e", "valueCode": "unknown"}]},
        },
    ),
    (
        "all reference forms",
        obs(
            subject={"reference": "Patient/1/_history/2"},
            focus=[
                {"reference": "https://ehr.example/fhir/Patient/1"},
                {"reference": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"},
                {"reference": "urn:oid:1.2.3.4"},
                {"reference": "Medication/m-1.2"},
                {"reference": "http://x.org/no/fhir"},
            ],
            performer=[{"reference": "#p1"}],
            contained=[{"resourceType": "Practitioner", "id": "p1"}],
        ),
    ),
    (
        "contained refers to its container",
        obs(
            contained=[
                {
                    "resourceType": "Provenance",
                    "id": "prov",
                    "recorded": "2020-01-01T00:00:00Z",
                    "agent": [{"who": {"display": "x"}}],
                    "target": [{"reference": "#"}],
                }
            ]
        ),
    ),
    (
        "contained referenced by canonical",
        {
            "resourceType": "Questionnaire",
            "status": "draft",
            "contained": [{"resourceType": "ValueSet", "id": "vs", "status": "draft"}],
            "item": [{"linkId": "1", "type": "choice", "answerValueSet": "#vs"}],
        },
    ),
    (
        "conditional reference in a transaction",
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": obs(subject={"reference": "Patient?identifier=http://x|1"}),
                    "request": {"method": "POST", "url": "Observation"},
                }
            ],
        },
    ),
    ("value set that is not enumerable is skipped", pat(photo=[{"contentType": "application/x-anything"}])),
    ("extensible binding is not enforced", obs(category=[{"coding": [{"system": "http://x", "code": "y"}]}])),
    (
        "text-only CodeableConcept under a required binding",
        {
            "resourceType": "Condition",
            "subject": {"reference": "Patient/1"},
            "clinicalStatus": {"text": "active"},
        },
    ),
    ("leap day", pat(birthDate="2024-02-29")),
    ("partial dates", obs(effectiveDateTime="2020-05", issued="2020-05-01T10:00:00.123+14:00")),
    (
        "big decimal and negative integer",
        obs(valueQuantity={"value": 1e300}, component=[{"code": {"text": "c"}, "valueInteger": -5}]),
    ),
    ("base64 with line breaks", pat(photo=[{"data": "QUJD\nREVG"}])),
]


@pytest.mark.parametrize("resource", [r for _, r in VALID], ids=[n for n, _ in VALID])
def test_valid_edge_forms(resource: dict[str, Any]) -> None:
    assert found(resource) == []


# -- everything at once, and robustness -------------------------------------------------------------


def test_reports_every_problem_not_just_the_first() -> None:
    resource = {
        "resourceType": "Patient",
        "id": "bad id",
        "gender": "mle",
        "birthDate": "1970-02-30",
        "active": "yes",
        "name": [{"family": "", "given": "Ann"}, {}],
        "telecom": {"system": "phone", "value": "555"},
        "nickname": "Annie",
        "managingOrganization": {"reference": "Practitioner/1"},
        "contact": [{"name": {"family": "Doe"}, "gender": "female", "organization": {"reference": "#org"}}],
    }
    assert found(resource) == [
        ("value", "Patient.id"),
        ("code-invalid", "Patient.gender"),
        ("value", "Patient.birthDate"),
        ("structure", "Patient.active"),
        ("value", "Patient.name[0].family"),
        ("structure", "Patient.name[0].given"),
        ("structure", "Patient.name[1]"),
        ("structure", "Patient.telecom"),
        ("structure", "Patient.nickname"),
        ("invalid", "Patient.managingOrganization.reference"),
        ("invariant", "Patient.contact[0].organization.reference"),
    ]


def test_issue_diagnostics_name_the_problem() -> None:
    (issue,) = validate_resource(pat(gender="mle"))
    assert (
        issue.diagnostics
        == "'mle' is not in the required value set http://hl7.org/fhir/ValueSet/administrative-gender"
    )
    (issue,) = validate_resource(obs(issued="2020-01-01T10:00:00"))
    assert "time zone" in issue.diagnostics
    (issue,) = validate_resource(obs(subject={"reference": "Practitioner/1"}))
    assert issue.diagnostics == (
        "a reference to Practitioner is not allowed here (allowed: Device, Group, Location, Patient)"
    )


def test_deep_nesting_stops_with_one_issue() -> None:
    deep: dict[str, Any] = {"url": "http://e", "valueString": "leaf"}
    for _ in range(MAX_DEPTH * 3):
        deep = {"url": "http://e", "extension": [deep]}
    codes = [code for code, _ in found(pat(extension=[deep]))]
    assert codes == ["too-costly"]


def test_cycles_and_shared_objects_terminate() -> None:
    looped: dict[str, Any] = {"url": "http://e"}
    looped["extension"] = [looped, looped]
    issues = validate_resource(pat(extension=[looped]))
    assert issues[-1].code == "too-costly"


def test_issue_count_is_capped() -> None:
    resource = pat(name=[{"family": 1} for _ in range(MAX_ISSUES * 2)])
    issues = validate_resource(resource)
    assert len(issues) == MAX_ISSUES + 1
    assert issues[-1].code == "too-costly"


def test_non_string_keys_do_not_raise() -> None:
    assert found({"resourceType": "Patient", 1: "x"}) == [("structure", "Patient")]


JUNK: list[object] = [
    None,
    [],
    {},
    "",
    0,
    -1,
    1.5,
    True,
    "x",
    [None],
    [{}],
    {"a": 1},
    [[]],
    "#",
    2**70,
    {"resourceType": "Patient"},
    {"reference": "#"},
    {"extension": []},
    ["a", 1],
]


def _mutate(doc: Any, rng: random.Random) -> Any:
    spots: list[tuple[Any, Any]] = []

    def visit(node: Any) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            spots.append((node, key))
            visit(child)

    visit(doc)
    if not spots:
        return rng.choice(JUNK)
    parent, key = rng.choice(spots)
    if isinstance(parent, dict) and rng.random() < 0.3:
        parent["_" + str(key)] = copy.deepcopy(rng.choice(JUNK))
    else:
        parent[key] = copy.deepcopy(rng.choice(JUNK))
    return doc


def test_never_raises_on_mutated_resources() -> None:
    rng = random.Random(20240601)
    originals = [_load(path) for path in sorted(FIXTURES.glob("*.json"))]
    for _ in range(400):
        doc = copy.deepcopy(rng.choice(originals))
        for _ in range(rng.randint(1, 4)):
            doc = _mutate(doc, rng)
        issues = validate_resource(doc)
        assert not [issue for issue in issues if issue.code == "exception"], issues


# -- definitions -----------------------------------------------------------------------------------


def test_known_resource_types_are_the_concrete_r4_types() -> None:
    types = known_resource_types()
    assert len(types) == 146
    assert {"Patient", "ExplanationOfBenefit", "Bundle", "Parameters", "Binary", "InsurancePlan"} <= types
    assert not {"Resource", "DomainResource", "SubscriptionStatus", "MetadataResource"} & types


def _vendored_regexes() -> dict[str, str]:
    regex_url = "http://hl7.org/fhir/StructureDefinition/regex"
    found_regexes: dict[str, str] = {}
    for entry in definitions.load("profiles-types")["entry"]:
        sd = entry["resource"]
        if sd.get("kind") != "primitive-type":
            continue
        for element in sd["snapshot"]["element"]:
            if element["path"] == f"{sd['id']}.value":
                for ext in element["type"][0].get("extension", []):
                    if ext["url"] == regex_url:
                        found_regexes[sd["id"]] = ext["valueString"]
    return found_regexes


def test_primitive_regexes_are_the_specs() -> None:
    vendored = _vendored_regexes()
    assert {name: vendored[name] for name in SPEC_REGEX} == SPEC_REGEX
    for pattern in SPEC_REGEX.values():
        re.compile(pattern)
