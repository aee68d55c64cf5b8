"""The CapabilityStatements of both bases declare the served guides: `instantiates`, `implementationGuide`,
`supportedProfile` per type (checked against the IG packages in ../shared, not against the vendored index),
every SHALL search parameter and include of the guides, and the operations."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from openpayer.api.context import DIRECTORY_TYPES
from openpayer.app import create_app
from openpayer.bootstrap import Services
from openpayer.config import Settings
from openpayer.conformance.metadata import load_index

REPO = Path(__file__).resolve().parents[2]
SHARED = (REPO / ".." / "shared").resolve()
FHIR_GUIDES = ["carin-bb-2.0.0", "us-core-3.1.1", "us-core-6.1.0", "pdex-2.0.0"]
DIRECTORY_GUIDES = ["plan-net-1.1.0", "us-drug-formulary-2.0.1"]


@pytest.fixture
def app_client(settings: Settings, services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(settings, services=services), base_url="http://testserver") as client:
        yield client


def _statement(client: TestClient, kind: str) -> dict[str, Any]:
    response = client.get(f"/sandbox/{kind}/metadata")  # public on both bases
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _profiles(folder: str) -> list[tuple[str, str]]:
    root = SHARED / "ig" / folder
    if not root.exists():
        pytest.skip(f"reference data {root} is not available")
    found = []
    for path in sorted(root.glob("StructureDefinition-*.json")):
        sd = json.loads(path.read_text(encoding="utf-8-sig"))
        if sd["kind"] == "resource" and sd.get("derivation") == "constraint":
            found.append((sd["type"], sd["url"]))
    return found


def _by_type(statement: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["type"]: r for r in statement["rest"][0]["resource"]}


def test_patient_access_instantiates_the_guides(app_client: TestClient) -> None:
    statement = _statement(app_client, "fhir")
    assert statement["instantiates"] == [
        "http://hl7.org/fhir/us/carin-bb/CapabilityStatement/c4bb",
        "http://hl7.org/fhir/us/core/CapabilityStatement/us-core-server|3.1.1",
        "http://hl7.org/fhir/us/core/CapabilityStatement/us-core-server|6.1.0",
        "http://hl7.org/fhir/us/davinci-pdex/CapabilityStatement/pdex-server",
    ]
    assert (
        "http://hl7.org/fhir/us/carin-bb/ImplementationGuide/hl7.fhir.us.carin-bb|2.0.0"
        in (statement["implementationGuide"])
    )
    assert len(statement["implementationGuide"]) == 4


def test_directory_instantiates_plan_net_and_formulary(app_client: TestClient) -> None:
    statement = _statement(app_client, "directory")
    assert statement["instantiates"] == [
        "http://hl7.org/fhir/us/davinci-pdex-plan-net/CapabilityStatement/plan-net",
        "http://hl7.org/fhir/us/davinci-drug-formulary/CapabilityStatement/usdf-server",
    ]
    assert set(_by_type(statement)) == DIRECTORY_TYPES


@pytest.mark.parametrize(("kind", "folders"), [("fhir", FHIR_GUIDES), ("directory", DIRECTORY_GUIDES)])
def test_every_profile_of_the_guides_is_a_supported_profile(
    app_client: TestClient, kind: str, folders: list[str]
) -> None:
    resources = _by_type(_statement(app_client, kind))
    missing = [
        (rtype, url)
        for folder in folders
        for rtype, url in _profiles(folder)
        if rtype in resources and url not in resources[rtype].get("supportedProfile", [])
    ]
    assert missing == []
    if kind == "directory":
        organization = resources["Organization"]["supportedProfile"]
        assert (
            "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/plannet-Network" in organization
        )
        assert (
            len(resources["InsurancePlan"]["supportedProfile"]) == 3
        )  # plan-net plan, USDF payer plan, formulary


@pytest.mark.parametrize(
    "guide", ["carin-bb", "us-core-3.1.1", "us-core-6.1.0", "pdex", "plan-net", "formulary"]
)
def test_every_shall_search_parameter_and_include_is_declared(app_client: TestClient, guide: str) -> None:
    index = load_index()
    kind = index.guide(guide).api
    resources = _by_type(_statement(app_client, kind))
    missing = []
    for required in index.statement(guide).resources:
        if required.type not in resources:
            if kind == "fhir" or required.type in DIRECTORY_TYPES:
                missing.append(required.type)
            continue
        ours = resources[required.type]
        declared = {p["name"] for p in ours["searchParam"]} | {"_id", "_lastUpdated"}
        missing += [
            f"{required.type}?{u.name}" for u in required.search_params if u.expectation == "SHALL"
            and u.name not in declared
        ]  # fmt: skip
        listed = set(ours["searchInclude"]) | set(ours["searchRevInclude"])
        asked = [i for i in (*required.includes, *required.revincludes) if i.expectation in ("SHALL", None)]
        missing += [
            f"{required.type}:{i.value}" for i in asked if not i.value.endswith("*") and i.value not in listed
        ]
    assert missing == []


def test_the_vendored_index_is_what_the_script_builds() -> None:
    if not (SHARED / "ig").exists():
        pytest.skip(f"reference data {SHARED / 'ig'} is not available")
    spec = importlib.util.spec_from_file_location(
        "vendor_ig_conformance", REPO / "scripts" / "vendor_ig_conformance.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.OUTPUT.read_bytes() == module.serialise(module.build(SHARED))
