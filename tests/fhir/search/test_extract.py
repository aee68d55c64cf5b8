"""Index extraction: compiled extractors against fhirpathpy, and the R4 §3.1.1.5 conversion tables."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from openpayer.fhir.search.extract import (
    MAX_MICROS,
    MIN_MICROS,
    ROW_ATTRIBUTES,
    compile_expression,
    date_range,
    extract_index,
    is_compiled,
    normalize_string,
)
from openpayer.fhir.search.registry import default_registry
from openpayer.fhir.storage.index import (
    DateValue,
    IndexRows,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    SpecialValue,
    StringValue,
    TokenValue,
)

SHARED = (Path(__file__).resolve().parents[3] / ".." / "shared").resolve()
ENGINES = [pytest.param(False, id="compiled"), pytest.param(True, id="fhirpathpy")]


def _us(text: str) -> int:
    """Microseconds since the epoch of an ISO instant (with zone)."""
    delta = datetime.fromisoformat(text) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _rows(resource: dict[str, Any], attribute: str, param: str, force: bool) -> list[Any]:
    rows = extract_index(resource, force_fhirpathpy=force)
    return [r for r in getattr(rows, attribute) if r.param == param]


# --- compiled == fhirpathpy on every example instance -------------------------------------------------------


def _example_files() -> list[Any]:
    files = sorted(SHARED.glob("ig/*/example/*.json"))
    files += sorted(SHARED.glob("fhir-data/inferno-reference-server-data/*.json"))
    if not files:
        reason = f"{SHARED} (IG examples, Inferno reference data) is not beside the repo"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-shared-data")]
    return [pytest.param(f, id=str(f.relative_to(SHARED))) for f in files]


def _instances(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = [document]
    if document.get("resourceType") == "Bundle":
        found += [e["resource"] for e in document.get("entry", ()) if isinstance(e.get("resource"), dict)]
    return [r for r in found if isinstance(r.get("resourceType"), str)]


def _as_sets(rows: IndexRows) -> dict[str, set[Any]]:
    return {attribute: set(getattr(rows, attribute)) for attribute in ROW_ATTRIBUTES}


@pytest.mark.parametrize("path", _example_files())
def test_compiled_extractors_match_fhirpathpy_on_examples(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8-sig"))
    for resource in _instances(document):
        before = copy.deepcopy(resource)
        compiled = extract_index(resource)
        reference = extract_index(resource, force_fhirpathpy=True)
        assert resource == before, "extraction must not modify the resource"
        label = f"{resource['resourceType']}/{resource.get('id')}"
        assert _as_sets(compiled) == _as_sets(reference), label
        for attribute in ROW_ATTRIBUTES:  # de-duplicated
            values = getattr(compiled, attribute)
            assert len(values) == len(set(values)), (label, attribute)


def test_every_registry_expression_is_compiled() -> None:
    fallbacks = [
        (p.base, p.code, p.expression)
        for p in default_registry()
        if p.type != "composite" and p.expression and not is_compiled(p.expression)
    ]
    assert fallbacks == []


def test_top_keys_only_name_properties_an_expression_needs() -> None:
    """extract_index skips an extractor when none of its `top_keys` is in the resource: sound only if the
    extractor selects nothing then (checked on every example below), useful if most expressions have them."""
    from openpayer.fhir.search.fhirpath import top_keys

    known = 0
    params = [p for p in default_registry() if p.type != "composite" and p.expression]
    for param in params:
        extractor = compile_expression(param.expression)
        keys = top_keys(extractor)
        if keys is None:
            continue
        known += 1
        for rtype in param.base:
            assert extractor({"resourceType": rtype, "id": "x"} if "id" not in keys else {}) == []
    assert known > 0.9 * len(params)
    assert top_keys(compile_expression("Patient.deceased.exists() and Patient.deceased != false")) is None
    assert top_keys(compile_expression("Observation.value | Observation.component.value")) >= {
        "valueQuantity",
        "valueString",
        "component",
    }


def test_a_parenthesised_choice_of_one_type_is_rooted_and_needs_only_that_type() -> None:
    """The R4 definitions write `(Observation.value.ofType(Quantity))`: the parentheses of one path are the
    path itself (fused from the root), and an Observation whose value is not a Quantity skips it."""
    from openpayer.fhir.search.fhirpath import rooted, top_keys

    expression = "(Observation.value.ofType(Quantity)) | (Observation.component.value.ofType(Quantity))"
    extractor = compile_expression(expression)
    assert top_keys(extractor) == {"valueQuantity", "component"}
    assert rooted(extractor, "Observation") is not None
    assert top_keys(
        compile_expression(
            "(Observation.value.ofType(string)) | (Observation.value.ofType(CodeableConcept)).text"
        )
    ) == {
        "valueString",
        "valueCodeableConcept",
    }
    quantity = {"value": 5.4, "unit": "mmol/L"}
    observation = {
        "resourceType": "Observation",
        "valueQuantity": quantity,
        "component": [{"valueString": "x"}],
    }
    assert extractor(observation) == [(quantity, "Quantity")]
    assert compile_expression("(Observation.value.ofType(CodeableConcept)).text")(observation) == []


@pytest.mark.parametrize("path", _example_files())
def test_extraction_without_shortcuts_is_the_same(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from openpayer.fhir.search import extract

    document = json.loads(path.read_text(encoding="utf-8-sig"))
    resources = _instances(document)
    fast = [extract_index(resource) for resource in resources]
    monkeypatch.setattr(extract, "_PLANS", type(extract._PLANS)())
    monkeypatch.setattr(extract, "top_keys", lambda extractor: None)
    monkeypatch.setattr(extract, "rooted", lambda extractor, resource_type: None)
    assert [extract_index(resource) for resource in resources] == fast


# --- compile_expression -------------------------------------------------------------------------------------

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "o1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    "subject": {"reference": "Group/g1"},
    "focus": [{"reference": "Patient/p1"}, {"reference": "https://other.example/fhir/Patient/p2/_history/3"}],
    "effectivePeriod": {"start": "2020-01-01"},
    "valueQuantity": {"value": 72, "unit": "beats/minute"},
    "component": [
        {"code": {"text": "a"}, "valueString": "x"},
        {"code": {"text": "b"}, "valueQuantity": {"value": 1}},
    ],
    "extension": [
        {"url": "http://e/1", "valueCode": "one"},
        {"url": "http://e/2", "valueCode": "two"},
        {"url": "http://e/1", "valueCode": "uno"},
    ],
    "_status": {"extension": [{"url": "http://e/3", "valueString": "note"}]},
}

EXPRESSIONS = [
    ("Observation.status", ["final"]),
    ("status", ["final"]),
    ("Observation.code.coding.code", ["8867-4"]),
    ("Observation.effective", [{"start": "2020-01-01"}]),
    ("(Observation.effective as dateTime) | (Observation.effective as Period)", [{"start": "2020-01-01"}]),
    ("Observation.effective.ofType(Period).start", ["2020-01-01"]),
    ("Observation.effective.as(dateTime)", []),
    ("Observation.value as Quantity", [{"value": 72, "unit": "beats/minute"}]),
    ("Observation.component.value.ofType(Quantity).value", [1]),
    ("(Observation.component.value as string)", ["x"]),
    ("Observation.component[1].code.text", ["b"]),
    ("Observation.subject.where(resolve() is Patient)", []),
    ("Observation.subject.where(resolve() is Group)", [{"reference": "Group/g1"}]),
    (
        "Observation.focus.where(resolve() is Patient).reference",
        ["Patient/p1", OBSERVATION["focus"][1]["reference"]],
    ),
    ("Observation.extension.where(url = 'http://e/1').value", ["one", "uno"]),
    ("Observation.extension.where(url='http://e/2').valueCode", ["two"]),
    ("Patient.name", []),
    ("Observation.status | Observation.code.coding.system", ["final", "http://loinc.org"]),
]


@pytest.mark.parametrize(("expression", "expected"), EXPRESSIONS)
@pytest.mark.parametrize("force", ENGINES)
def test_compile_expression(expression: str, expected: list[Any], force: bool) -> None:
    assert is_compiled(expression)
    values = [value for value, _ in compile_expression(expression, force_fhirpathpy=force)(OBSERVATION)]
    assert values == expected


def test_compiled_items_carry_fhir_types() -> None:
    items = compile_expression("Observation.effective | Observation.value | Observation.component")(
        OBSERVATION
    )
    assert [t for _, t in items] == ["Period", "Quantity", "Observation.component", "Observation.component"]


def test_extension_function_returns_every_match() -> None:
    values = compile_expression("Observation.extension('http://e/1').value")(OBSERVATION)
    assert [v for v, _ in values] == ["one", "uno"]


def test_other_shapes_fall_back_to_fhirpathpy() -> None:
    expression = "Observation.component.where(code.text = 'a').value.exists()"
    assert not is_compiled(expression)
    assert [v for v, _ in compile_expression(expression)(OBSERVATION)] == [True]


# --- dates --------------------------------------------------------------------------------------------------

DATES = [
    ("2020", "2020-01-01T00:00:00+00:00", "2020-12-31T23:59:59.999999+00:00"),
    ("2020-02", "2020-02-01T00:00:00+00:00", "2020-02-29T23:59:59.999999+00:00"),
    ("2021-02", "2021-02-01T00:00:00+00:00", "2021-02-28T23:59:59.999999+00:00"),
    ("2020-03-15", "2020-03-15T00:00:00+00:00", "2020-03-15T23:59:59.999999+00:00"),
    ("2020-03-15T10:30:00Z", "2020-03-15T10:30:00+00:00", "2020-03-15T10:30:00.999999+00:00"),
    ("2020-03-15T10:30:00.5Z", "2020-03-15T10:30:00.5+00:00", "2020-03-15T10:30:00.599999+00:00"),
    ("2020-03-15T10:30:00.123Z", "2020-03-15T10:30:00.123+00:00", "2020-03-15T10:30:00.123999+00:00"),
    ("2020-03-15T10:30:00.1234567Z", "2020-03-15T10:30:00.123456+00:00", "2020-03-15T10:30:00.123456+00:00"),
    ("2020-03-15T10:30:00+05:30", "2020-03-15T05:00:00+00:00", "2020-03-15T05:00:00.999999+00:00"),
    ("2020-12-31T23:00:00-05:00", "2021-01-01T04:00:00+00:00", "2021-01-01T04:00:00.999999+00:00"),
    ("2020-03-15T10:30:00", "2020-03-15T10:30:00+00:00", "2020-03-15T10:30:00.999999+00:00"),  # no zone: UTC
    ("2020-03-15T10:30Z", "2020-03-15T10:30:00+00:00", "2020-03-15T10:30:59.999999+00:00"),
    ("1969-07-20", "1969-07-20T00:00:00+00:00", "1969-07-20T23:59:59.999999+00:00"),
]


@pytest.mark.parametrize(("value", "low", "high"), DATES)
def test_date_ranges(value: str, low: str, high: str) -> None:
    assert date_range(value) == (_us(low), _us(high))


def test_date_range_limits_and_errors() -> None:
    assert _us("0001-01-01T00:00:00+00:00") == MIN_MICROS
    assert _us("9999-12-31T23:59:59.999999+00:00") == MAX_MICROS
    assert date_range("0001") == (MIN_MICROS, _us("0001-12-31T23:59:59.999999+00:00"))
    assert date_range("9999") == (_us("9999-01-01T00:00:00+00:00"), MAX_MICROS)
    # offsets that cross the limits are clamped to them
    assert date_range("0001-01-01T10:00:00+14:00") == (MIN_MICROS, MIN_MICROS)
    assert date_range("0001-01-01T16:00:00+14:00") == (
        _us("0001-01-01T02:00:00+00:00"),
        _us("0001-01-01T02:00:00.999999+00:00"),
    )
    assert date_range("9999-12-31T23:59:59-10:00") == (MAX_MICROS, MAX_MICROS)
    for bad in ("2020-13", "2020-02-30", "20200101", "2020-01-01T25:00:00Z", "yesterday", "0000"):
        assert date_range(bad) is None, bad


@pytest.mark.parametrize("force", ENGINES)
def test_date_params(force: bool) -> None:
    patient = {"resourceType": "Patient", "birthDate": "1987-02"}
    assert _rows(patient, "dates", "birthdate", force) == [
        DateValue("birthdate", _us("1987-02-01T00:00:00+00:00"), _us("1987-02-28T23:59:59.999999+00:00"))
    ]
    open_end = {"resourceType": "Encounter", "period": {"start": "2021-05-01T08:00:00-04:00"}}
    assert _rows(open_end, "dates", "date", force) == [
        DateValue("date", _us("2021-05-01T12:00:00+00:00"), MAX_MICROS)
    ]
    open_start = {"resourceType": "Encounter", "period": {"end": "2021"}}
    assert _rows(open_start, "dates", "date", force) == [
        DateValue("date", MIN_MICROS, _us("2021-12-31T23:59:59.999999+00:00"))
    ]
    empty = {"resourceType": "Encounter", "period": {}}
    assert _rows(empty, "dates", "date", force) == []
    observation = {"resourceType": "Observation", "effectiveDateTime": "2020-06-01T10:00:00+02:00"}
    assert _rows(observation, "dates", "date", force) == [
        DateValue("date", _us("2020-06-01T08:00:00+00:00"), _us("2020-06-01T08:00:00.999999+00:00"))
    ]
    timing = {
        "resourceType": "CarePlan",
        "activity": [{"detail": {"scheduledTiming": {"event": ["2020-03-01", "2020-01-15T10:00:00Z"]}}}],
    }
    assert _rows(timing, "dates", "activity-date", force) == [
        DateValue("activity-date", _us("2020-01-15T10:00:00+00:00"), _us("2020-03-01T23:59:59.999999+00:00"))
    ]


# --- strings ------------------------------------------------------------------------------------------------


def test_normalize_string() -> None:
    assert normalize_string("Zoë") == "zoe"
    assert normalize_string("  José   MARÍA\tÑúñez ") == "jose maria nunez"
    assert normalize_string("ﬁne") == "fine"  # NFKD compatibility folding
    assert len(normalize_string("x" * 600)) == 255


@pytest.mark.parametrize("force", ENGINES)
def test_human_name_and_address_parts(force: bool) -> None:
    patient = {
        "resourceType": "Patient",
        "name": [
            {
                "family": "Zoë",
                "given": ["Anne", "Marie"],
                "prefix": ["Dr."],
                "suffix": ["PhD"],
                "text": "Dr. Zoë",
            },
        ],
        "address": [
            {"line": ["1 Main St", "Apt 2"], "city": "Québec", "district": "D", "state": "QC"}
            | {"postalCode": "G1A", "country": "CA", "text": "1 Main St, Québec"}
        ],
    }
    names = _rows(patient, "strings", "name", force)
    assert [(s.value, s.normalized) for s in names] == [
        ("Zoë", "zoe"),
        ("Anne", "anne"),
        ("Marie", "marie"),
        ("Dr.", "dr."),
        ("PhD", "phd"),
        ("Dr. Zoë", "dr. zoe"),
    ]
    assert _rows(patient, "strings", "family", force) == [StringValue("family", "Zoë", "zoe")]
    address = [s.value for s in _rows(patient, "strings", "address", force)]
    assert address == ["1 Main St", "Apt 2", "Québec", "D", "QC", "G1A", "CA", "1 Main St, Québec"]
    assert _rows(patient, "strings", "address-city", force) == [
        StringValue("address-city", "Québec", "quebec")
    ]


def test_long_strings_are_truncated() -> None:
    rows = _rows({"resourceType": "Patient", "name": [{"family": "A" * 600}]}, "strings", "family", False)
    assert len(rows[0].value) == 512
    assert rows[0].normalized == "a" * 255


# --- tokens -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("force", ENGINES)
def test_identifier_tokens(force: bool) -> None:
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}]
                }
                | {"text": "Member Number"},
                "system": "https://plan.example/member",
                "value": "M123",
            },
            {"value": "no-system"},
            {
                "system": "https://plan.example/member",
                "value": "M123",
            },  # same row as the first: de-duplicated
        ],
    }
    assert _rows(patient, "tokens", "identifier", force) == [
        TokenValue("identifier", "https://plan.example/member", "M123", "member number"),
        TokenValue("identifier", None, "no-system", None),
        TokenValue("identifier", "https://plan.example/member", "M123", None),
    ]
    assert _rows(patient, "tokens", "identifier|of-type", force) == [
        TokenValue("identifier|of-type", "http://terminology.hl7.org/CodeSystem/v2-0203", "MB|M123")
    ]


@pytest.mark.parametrize("force", ENGINES)
def test_coding_and_codeable_concept_tokens(force: bool) -> None:
    observation = {
        "resourceType": "Observation",
        "code": {
            "coding": [
                {"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"},
                {"system": "http://snomed.info/sct", "code": "364075005"},
            ],
            "text": "Pulse",
        },
        "category": [{"text": "Vital Signs"}],
        "meta": {"tag": [{"system": "http://tags", "code": "t1", "display": "Tag One"}]},
    }
    assert _rows(observation, "tokens", "code", force) == [
        TokenValue("code", "http://loinc.org", "8867-4", "pulse"),
        TokenValue("code", None, None, "heart rate"),
        TokenValue("code", "http://snomed.info/sct", "364075005", "pulse"),
    ]
    assert _rows(observation, "tokens", "category", force) == [
        TokenValue("category", None, None, "vital signs")
    ]
    assert _rows(observation, "tokens", "_tag", force) == [TokenValue("_tag", "http://tags", "t1", "tag one")]
    no_text = {"resourceType": "Observation", "code": {"coding": [{"code": "x", "display": "Ex"}]}}
    assert _rows(no_text, "tokens", "code", force) == [TokenValue("code", None, "x", "ex")]


@pytest.mark.parametrize("force", ENGINES)
def test_code_boolean_and_contact_point_tokens(force: bool) -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "gender": "female",
        "active": False,
        "telecom": [
            {"system": "phone", "value": "555-0100", "use": "home"},
            {"system": "email", "value": "a@b.c"},
        ],
    }
    assert _rows(patient, "tokens", "gender", force) == [TokenValue("gender", None, "female")]
    assert _rows(patient, "tokens", "active", force) == [TokenValue("active", None, "false")]
    assert _rows(patient, "tokens", "_id", force) == []  # searched on the resource row
    assert _rows(patient, "tokens", "telecom", force) == [
        TokenValue("telecom", None, "555-0100"),
        TokenValue("telecom", None, "a@b.c"),
    ]
    assert _rows(patient, "tokens", "phone", force) == [TokenValue("phone", None, "555-0100")]
    assert _rows(patient, "tokens", "deceased", force) == [TokenValue("deceased", None, "false")]
    deceased = {"resourceType": "Patient", "deceasedDateTime": "2020-01-01"}
    assert _rows(deceased, "tokens", "deceased", force) == [TokenValue("deceased", None, "true")]


# --- numbers and quantities ---------------------------------------------------------------------------------


@pytest.mark.parametrize("force", ENGINES)
def test_quantities_and_money(force: bool) -> None:
    observation = {
        "resourceType": "Observation",
        "valueQuantity": {
            "value": 72,
            "unit": "beats/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }
    assert _rows(observation, "quantities", "value-quantity", force) == [
        QuantityValue("value-quantity", 72.0, "http://unitsofmeasure.org", "/min", "beats/min")
    ]
    invoice = {"resourceType": "Invoice", "totalGross": {"value": 10.5, "currency": "USD"}}
    assert _rows(invoice, "quantities", "totalgross", force) == [
        QuantityValue("totalgross", 10.5, "urn:iso:std:iso:4217", "USD", None)
    ]
    condition = {"resourceType": "Condition", "onsetAge": {"value": 52, "unit": "yr", "code": "a"}}
    assert _rows(condition, "quantities", "onset-age", force) == [
        QuantityValue("onset-age", 52.0, None, "a", "yr")
    ]
    ranged = {
        "resourceType": "Condition",
        "onsetRange": {"low": {"value": 1}, "high": {"value": 3, "unit": "yr"}},
    }
    assert _rows(ranged, "quantities", "onset-age", force) == [
        QuantityValue("onset-age", 1.0, None, None, None),
        QuantityValue("onset-age", 3.0, None, None, "yr"),
    ]
    no_value = {"resourceType": "Observation", "valueQuantity": {"unit": "kg"}}
    assert _rows(no_value, "quantities", "value-quantity", force) == []


@pytest.mark.parametrize("force", ENGINES)
def test_numbers(force: bool) -> None:
    risk = {
        "resourceType": "RiskAssessment",
        "prediction": [
            {"probabilityDecimal": 0.25},
            {"probabilityRange": {"low": {"value": 1}, "high": {"value": 5}}},
        ],
    }
    assert _rows(risk, "numbers", "probability", force) == [
        NumberValue("probability", 0.25),
        NumberValue("probability", 1.0),
        NumberValue("probability", 5.0),
    ]


# --- references ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("force", ENGINES)
def test_references(force: bool) -> None:
    eob = {
        "resourceType": "ExplanationOfBenefit",
        "patient": {"reference": "Patient/p1/_history/4"},
        "provider": {"reference": "https://npi.example/fhir/Practitioner/123"},
        "insurer": {"reference": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"},
        "careTeam": [
            {"provider": {"reference": "#contained-1"}},
            {"provider": {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "999"}}},
            {"provider": {"type": "Practitioner", "identifier": {"system": "npi", "value": "1"}}},
            {"provider": {"reference": "Practitioner?identifier=npi|1"}},
            {"provider": {"reference": "PractitionerRole/r1", "identifier": {"value": "r-1"}}},
            {"provider": {"display": "Dr. Nobody"}},
        ],
        "insurance": [{"coverage": {"reference": "Coverage/c1"}}, {"coverage": {"reference": "Coverage/c1"}}],
    }
    rows = extract_index(eob, force_fhirpathpy=force).references
    by_param: dict[str, list[ReferenceValue]] = {}
    for row in rows:
        by_param.setdefault(row.param, []).append(row)
    assert by_param["patient"] == [ReferenceValue("patient", "Patient", "p1", None)]
    assert by_param["provider"] == [
        ReferenceValue("provider", None, None, "https://npi.example/fhir/Practitioner/123")
    ]
    assert by_param["insurer"] == [
        ReferenceValue("insurer", None, None, "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0")
    ]
    assert by_param["care-team"] == [
        ReferenceValue("care-team", None, None, None, "http://hl7.org/fhir/sid/us-npi", "999"),
        ReferenceValue("care-team", "Practitioner", None, None, "npi", "1"),
        ReferenceValue("care-team", "PractitionerRole", "r1", None, None, "r-1"),
    ]
    assert by_param["coverage"] == [ReferenceValue("coverage", "Coverage", "c1", None)]  # de-duplicated


def test_rows_made_once_are_the_same_rows_every_time() -> None:
    """References and dates are made once per parameter and value (`extract._literal_row`, `_date_row`),
    and long values are never kept: both give what the first extraction gave."""
    long_url = "https://payer.example/fhir/Practitioner/" + "x" * 300
    eob = {
        "resourceType": "ExplanationOfBenefit",
        "created": "2024-03-01",
        "patient": {"reference": "Patient/p1"},
        "provider": {"reference": long_url},
        "insurer": {"reference": "Organization/o1", "identifier": {"system": "s", "value": "v"}},
        "careTeam": [
            {"provider": {"reference": "Unknown/1"}},
            {"provider": {"reference": ""}},
            {"provider": {"reference": "#c1"}},
            {"provider": {"reference": "Practitioner?identifier=npi|1"}},
        ],
    }
    first = extract_index(copy.deepcopy(eob))
    again = extract_index(copy.deepcopy(eob))
    assert again == first
    assert sorted(first.references) == [
        ReferenceValue("insurer", "Organization", "o1", None, "s", "v"),
        ReferenceValue("patient", "Patient", "p1", None),
        ReferenceValue("provider", None, None, long_url),
    ]
    # a reference used by another parameter is that parameter's row, not the first one's
    eob["careTeam"] = [{"provider": {"reference": "Patient/p1"}}]
    assert ReferenceValue("care-team", "Patient", "p1", None) in extract_index(eob).references
    created = [row for row in first.dates if row.param == "created"]
    assert created == [DateValue("created", _us("2024-03-01T00:00:00Z"), _us("2024-03-01T23:59:59.999999Z"))]
    padded = extract_index({**eob, "created": "2024-03-01" + " " * 300}).dates
    assert [row for row in padded if row.param == "created"] == created


def test_a_concept_seen_before_gives_its_own_rows_for_each_parameter() -> None:
    """A CodeableConcept's rows are kept by parameter and JSON text (`extract._CONCEPT_ROWS`)."""
    heart = {
        "coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}],
        "text": "HR",
    }
    observation = {"resourceType": "Observation", "status": "final", "code": heart, "category": [heart]}

    def tokens(resource: dict[str, Any], param: str) -> list[TokenValue]:
        return [row for row in extract_index(resource).tokens if row.param == param]

    for _ in range(2):
        assert tokens(observation, "code") == [
            TokenValue("code", "http://loinc.org", "8867-4", "hr"),
            TokenValue("code", None, None, "heart rate"),
        ]
        assert tokens(observation, "category") == [
            TokenValue("category", "http://loinc.org", "8867-4", "hr"),
            TokenValue("category", None, None, "heart rate"),
        ]
    other = {**heart, "coding": [{**heart["coding"][0], "display": "Pulse"}]}
    assert tokens({**observation, "code": other}, "code") == [
        TokenValue("code", "http://loinc.org", "8867-4", "hr"),
        TokenValue("code", None, None, "pulse"),
    ]
    assert tokens({**observation, "code": {**heart, "text": "Heart rate"}}, "code") == [
        TokenValue("code", "http://loinc.org", "8867-4", "heart rate")
    ]


@pytest.mark.parametrize("force", ENGINES)
def test_resolve_is_checks_the_literal_type(force: bool) -> None:
    for subject, expected in [
        ({"reference": "Patient/p1"}, [ReferenceValue("patient", "Patient", "p1", None)]),
        (
            {"reference": "https://x.example/fhir/Patient/p2"},
            [ReferenceValue("patient", None, None, "https://x.example/fhir/Patient/p2")],
        ),
        ({"reference": "Group/g1"}, []),
        (
            {"type": "Patient", "identifier": {"value": "m1"}},
            [ReferenceValue("patient", "Patient", None, None, None, "m1")],
        ),
        ({"identifier": {"value": "m1"}}, []),
        ({"reference": "#p"}, []),
    ]:
        observation = {"resourceType": "Observation", "subject": subject}
        assert _rows(observation, "references", "patient", force) == expected, subject
        assert len(_rows(observation, "references", "subject", force)) == (
            1 if "#p" not in str(subject) else 0
        )


@pytest.mark.parametrize("force", ENGINES)
def test_canonical_references_and_extensions(force: bool) -> None:
    response = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "http://q.example/Questionnaire/q|1.0",
    }
    assert _rows(response, "references", "questionnaire", force) == [
        ReferenceValue("questionnaire", None, None, "http://q.example/Questionnaire/q|1.0")
    ]
    role = {
        "resourceType": "PractitionerRole",
        "extension": [
            {
                "url": "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/network-reference",
                "valueReference": {"reference": "Organization/net1"},
            }
        ],
    }
    assert _rows(role, "references", "network", force) == [
        ReferenceValue("network", "Organization", "net1", None)
    ]


# --- special, robustness ------------------------------------------------------------------------------------


@pytest.mark.parametrize("force", ENGINES)
def test_location_near(force: bool) -> None:
    location = {"resourceType": "Location", "position": {"latitude": 41.76, "longitude": -72.68}}
    assert extract_index(location, force_fhirpathpy=force).specials == [SpecialValue("near", 41.76, -72.68)]
    assert extract_index({"resourceType": "Location", "position": {"latitude": 1}}).specials == []


@pytest.mark.parametrize("force", ENGINES)
def test_malformed_resources_never_raise(force: bool) -> None:
    assert extract_index({"no": "type"}, force_fhirpathpy=force) == IndexRows()
    assert extract_index({"resourceType": "NoSuchType"}, force_fhirpathpy=force) == IndexRows()
    weird = {
        "resourceType": "Patient",
        "name": "not a list",
        "birthDate": {"not": "a date"},
        "identifier": [None, 3, {"value": 7}],
        "telecom": [{"value": ["x"]}],
        "address": [{"line": [None, 5, "ok"]}],
        "generalPractitioner": [{"reference": 12}],
        "gender": "male",
    }
    rows = extract_index(weird, force_fhirpathpy=force)
    assert TokenValue("gender", None, "male") in rows.tokens
    assert StringValue("address", "ok", "ok") in rows.strings


def test_dates_without_zone_and_malformed_values_in_resources() -> None:
    observation = {
        "resourceType": "Observation",
        "effectiveDateTime": "not-a-date",
        "issued": "2020-01-01T00:00:00Z",
    }
    rows = extract_index(observation)
    assert [d.param for d in rows.dates] == []  # issued has no R4 search parameter; the bad date is skipped
    now = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5)))
    stamp = now.isoformat()
    zoned = {"resourceType": "Observation", "effectiveDateTime": stamp, "meta": {"lastUpdated": stamp}}
    assert extract_index(zoned).dates == [  # _lastUpdated is searched on the resource row, not indexed
        DateValue("date", _us(now.isoformat()), _us(now.isoformat()) + 999_999)
    ]
