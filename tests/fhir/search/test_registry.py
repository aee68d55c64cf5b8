"""The search-parameter registry: R4 core plus the served IGs, expanded per concrete type."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from openpayer.fhir.search.registry import (
    SearchParam,
    SearchParamRegistry,
    build_registry,
    concrete_resource_types,
    default_registry,
    load_ig_bundle,
    normalize_as,
    restrict_expression,
    split_union,
)

REPO = Path(__file__).resolve().parents[3]
SHARED = (REPO / ".." / "shared").resolve()
RESOURCE_PARAMS = {"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source"}


@pytest.fixture(scope="module")
def registry():
    return default_registry()


def _param(registry: SearchParamRegistry, rtype: str, code: str) -> SearchParam:
    param = registry.get(rtype, code)
    assert param is not None, f"{rtype}.{code} missing"
    return param


def test_default_registry_is_a_cached_singleton(registry):
    assert default_registry() is registry


def test_concrete_types():
    types = concrete_resource_types()
    assert len(types) == 146
    assert {"Patient", "ExplanationOfBenefit", "Bundle", "Binary", "Parameters", "Basic"} <= types
    assert not {"Resource", "DomainResource", "Element"} & types


def test_counts_per_type_are_sane(registry):
    assert registry.types() == concrete_resource_types()
    counts = {t: len(registry.for_type(t)) for t in registry.types()}
    assert 2_400 < sum(counts.values()) < 2_800
    assert min(counts.values()) == len(RESOURCE_PARAMS)  # Binary, Parameters, ...
    assert set(registry.for_type("Binary")) == RESOURCE_PARAMS
    assert counts["Patient"] >= 30
    assert counts["ExplanationOfBenefit"] >= 25
    assert counts["Observation"] >= 40
    assert registry.for_type("NoSuchType") == {}
    assert registry.get("NoSuchType", "_id") is None


def test_resource_params_are_expanded_onto_every_type(registry):
    for rtype in concrete_resource_types():
        assert set(registry.for_type(rtype)) >= RESOURCE_PARAMS, rtype
        assert _param(registry, rtype, "_id").expression == f"{rtype}.id"
    last_updated = _param(registry, "ExplanationOfBenefit", "_lastUpdated")
    assert (last_updated.type, last_updated.expression) == ("date", "ExplanationOfBenefit.meta.lastUpdated")
    assert _param(registry, "Patient", "_id").type == "token"
    assert _param(registry, "Patient", "_profile").type == "uri"
    assert _param(registry, "Patient", "_tag").expression == "Patient.meta.tag"


def test_unsupported_params_are_left_out(registry):
    for param in registry:
        assert param.code not in {"_text", "_content", "_query", "_filter"}
        assert param.expression


def test_explanation_of_benefit(registry):
    eob = registry.for_type("ExplanationOfBenefit")
    assert {"patient", "_lastUpdated", "_id", "service-date", "type", "identifier", "provider"} <= set(eob)
    assert eob["patient"].type == "reference"
    assert eob["patient"].targets == ("Patient",)
    assert set(eob["provider"].targets) == {"Practitioner", "Organization", "PractitionerRole"}
    service_date = eob["service-date"]
    assert service_date.type == "date"
    assert (
        service_date.url
        == "http://hl7.org/fhir/us/carin-bb/SearchParameter/explanationofbenefit-service-date"
    )
    assert (
        service_date.expression == "ExplanationOfBenefit.billablePeriod | ExplanationOfBenefit.item.serviced"
    )
    assert eob["type"].type == "token"
    assert eob["identifier"].url == "http://hl7.org/fhir/SearchParameter/ExplanationOfBenefit-identifier"
    assert eob["insurer"].targets == ("Organization",)


def test_plan_net(registry):
    practitioner = registry.for_type("Practitioner")
    assert {"name", "family", "given", "identifier"} <= set(practitioner)
    assert practitioner["family"].expression == "Practitioner.name.family"  # the Patient branch is dropped
    network = _param(registry, "PractitionerRole", "network")
    assert (
        network.url == "http://hl7.org/fhir/us/davinci-pdex-plan-net/SearchParameter/practitionerrole-network"
    )
    assert network.targets == ("Organization",)
    assert _param(registry, "Organization", "coverage-area").targets == ("Location",)
    assert _param(registry, "InsurancePlan", "plan-type").type == "token"
    assert _param(registry, "OrganizationAffiliation", "primary-organization").targets == ("Organization",)
    # Plan-Net writes "ofType" for the of-type modifier
    assert "ofType" not in _param(registry, "PractitionerRole", "specialty").modifiers


def test_us_drug_formulary(registry):
    plan = registry.for_type("InsurancePlan")
    assert plan["formulary-coverage"].type == "reference"
    assert plan["formulary-coverage"].targets == ("InsurancePlan",)
    assert plan["coverage-type"].type == "token"
    assert plan["coverage-type"].expression == "InsurancePlan.coverage.type"
    basic = registry.for_type("Basic")
    assert {"drug-tier", "formulary", "pharmacy-benefit-type", "period", "status", "code", "subject"} <= set(
        basic
    )
    assert basic["drug-tier"].type == "token"
    assert basic["formulary"].targets == ("InsurancePlan",)
    assert basic["period"].type == "date"
    assert _param(registry, "MedicationKnowledge", "drug-name").type == "string"


def test_us_core(registry):
    race = _param(registry, "Patient", "race")
    assert race.url == "http://hl7.org/fhir/us/core/SearchParameter/us-core-race"
    assert _param(registry, "Condition", "asserted-date").type == "date"
    assert _param(registry, "Encounter", "discharge-disposition").type == "token"  # 6.1.0 only
    # same expression as core: the core definition is kept, targets included (US Core 3.1.1 adds Group)
    patient = _param(registry, "Observation", "patient")
    assert patient.url == "http://hl7.org/fhir/SearchParameter/clinical-patient"
    assert patient.expression == "Observation.subject.where(resolve() is Patient)"
    assert patient.targets == ("Patient",)


def test_reference_targets(registry):
    assert _param(registry, "Encounter", "patient").targets == ("Patient",)
    assert _param(registry, "Coverage", "beneficiary").targets == ("Patient",)
    assert set(_param(registry, "Coverage", "payor").targets) == {"Organization", "Patient", "RelatedPerson"}
    assert _param(registry, "Observation", "subject").targets  # many
    assert _param(registry, "ExplanationOfBenefit", "coverage").targets == ("Coverage",)


def test_composites_carry_component_codes(registry):
    composite = _param(registry, "Observation", "code-value-quantity")
    assert composite.type == "composite"
    assert composite.components == (("code", "code"), ("value-quantity", "value.ofType(Quantity)"))
    for param in registry:
        for code, expression in param.components:
            assert registry.get(param.base, code) is not None, (param.base, param.code, code)
            assert expression


def test_modifiers_and_comparators(registry):
    assert "exact" in _param(registry, "Patient", "name").modifiers
    assert "of-type" in _param(registry, "Patient", "identifier").modifiers
    assert "identifier" in _param(registry, "ExplanationOfBenefit", "patient").modifiers
    assert set(_param(registry, "Patient", "birthdate").comparators) >= {"eq", "gt", "le", "sa", "ap"}
    assert _param(registry, "Patient", "name").comparators == ()


def test_expression_helpers():
    assert split_union("a.b | (c | d).e | f.where(x='|')") == ["a.b", "(c | d).e", "f.where(x='|')"]
    assert normalize_as("(Goal.target.due as date)") == "(Goal.target.due.ofType(date))"
    assert normalize_as("Condition.onset.as(dateTime)") == "Condition.onset.ofType(dateTime)"
    expression = "Patient.name.family | Practitioner.name.family"
    assert restrict_expression(expression, "Practitioner", "Practitioner") == "Practitioner.name.family"
    assert restrict_expression("Resource.meta.tag", "Basic", "Resource") == "Basic.meta.tag"
    assert restrict_expression("name | alias", "InsurancePlan", "InsurancePlan") == "name | alias"
    assert restrict_expression("Patient.x", "Group", "Group") is None


# --- precedence rules, on synthetic definitions -------------------------------------------------------------


def _sp(code: str, base: str, expression: str, ptype: str = "token", **extra: Any) -> dict[str, Any]:
    url = extra.pop("url", f"http://example.org/SearchParameter/{base}-{code}")
    resource = {"resourceType": "SearchParameter", "url": url, "code": code, "base": [base]}
    return {"resource": {**resource, "type": ptype, "expression": expression, **extra}}


def _ig(package: str, version: str, *entries: dict[str, Any]) -> list[dict[str, Any]]:
    source = {
        "url": "http://hl7.org/fhir/StructureDefinition/package-source",
        "extension": [{"url": "packageId", "valueId": package}, {"url": "version", "valueString": version}],
    }
    return [{**e, "extension": [source]} for e in entries]


def test_merge_rules():
    core = {
        "entry": [
            _sp("name", "Location", "Location.name | Location.alias", "string", url="core-name"),
            _sp("status", "Goal", "Goal.lifecycleStatus", url="core-status"),
            _sp("code", "Basic", "Basic.code", url="core-code", target=[]),
            _sp("_text", "Basic", "Basic.text", "string"),
            _sp(
                "patient",
                "Goal",
                "Goal.subject",
                "reference",
                url="core-patient",
                target=["Patient", "Group"],
            ),
        ]
    }
    ig = {
        "entry": [
            *_ig(
                "hl7.fhir.us.core",
                "3.1.1",
                _sp("name", "Location", "Location.name", "string", url="uscore3-name"),
                _sp("tier", "Basic", "Basic.extension.value", url="uscore3-tier"),
            ),
            *_ig(
                "hl7.fhir.us.core",
                "6.1.0",
                _sp("tier", "Basic", "Basic.extension.value.code", url="uscore6-tier"),
                _sp(
                    "patient",
                    "Goal",
                    "(Goal.subject)",
                    "reference",
                    url="uscore6-patient",
                    target=["Patient"],
                ),
            ),
            *_ig(
                "hl7.fhir.us.davinci-drug-formulary",
                "2.0.1",
                _sp("status", "Goal", "Goal.lifecycleStatus | Goal.achievementStatus", url="usdf-status"),
                _sp("code", "Basic", "Basic.code", "string", url="usdf-code"),
                _sp("kind", "Basic", "Basic.code", url="usdf-kind"),
            ),
            *_ig("hl7.fhir.us.carin-bb", "2.0.0", _sp("kind", "Basic", "Basic.author", url="carin-kind")),
        ]
    }
    decisions: list[str] = []
    registry = build_registry(core, ig, decisions=decisions)
    by = {(p.base, p.code): p for p in registry}
    assert by["Location", "name"].url == "core-name"  # IG subset: core kept
    assert by["Goal", "status"].url == "usdf-status"  # IG strict superset of core: IG wins
    assert by["Basic", "code"].url == "core-code"  # different type: core kept
    assert by["Goal", "patient"].url == "core-patient"  # duplicate (parentheses ignored)
    assert by["Goal", "patient"].targets == ("Patient", "Group")  # the held definition, whole
    assert by["Basic", "tier"].url == "uscore6-tier"  # newer US Core wins
    assert by["Basic", "kind"].url == "carin-kind"  # IG precedence: CARIN before USDF
    assert ("Basic", "_text") not in by
    assert len(decisions) == 6
    assert any(d.startswith("Goal.status: ig-superset:") for d in decisions)


# --- the vendored IG bundle ---------------------------------------------------------------------------------


def test_vendored_ig_bundle():
    bundle = load_ig_bundle()
    assert bundle["resourceType"] == "Bundle"
    assert len(bundle["entry"]) == 273
    packages = {ext["extension"][0]["valueId"] for e in bundle["entry"] for ext in e["extension"]}
    assert packages == {
        "hl7.fhir.us.carin-bb",
        "hl7.fhir.us.davinci-pdex",
        "hl7.fhir.us.davinci-pdex-plan-net",
        "hl7.fhir.us.davinci-drug-formulary",
        "hl7.fhir.us.core",
    }


@pytest.mark.skipif(not (SHARED / "ig").is_dir(), reason="../shared/ig (IG packages) is not beside the repo")
def test_vendored_ig_bundle_matches_the_script():
    spec = importlib.util.spec_from_file_location(
        "vendor_ig", REPO / "scripts" / "vendor_ig_search_parameters.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.serialise(module.build_bundle(SHARED))
    vendored = (REPO / "src" / "openpayer" / "fhir" / "data" / "ig-search-parameters.json.gz").read_bytes()
    assert json.loads(gzip.decompress(vendored)) == json.loads(gzip.decompress(expected))
    assert vendored == expected
