"""The walker's fast paths (`Field.fast`) report exactly what its general path reports.

Each test validates the same instances twice: as the validator runs, and with every field sent down the
general path (`fast = GENERAL`), and compares the issues (code, diagnostics, expression, in order).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from openpayer.fhir.outcome import Issue
from openpayer.fhir.validation import structure, validate_resource
from openpayer.fhir.validation.builder import read_vendored_index
from openpayer.fhir.validation.model import (
    GENERAL,
    ONE_CODE,
    ONE_DECIMAL,
    ONE_INTEGER,
    ONE_STRING,
    ONE_URI,
    build_model,
    get_model,
)
from openpayer.fhir.validation.structure import generic_walker

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "fhir"
SHARED = (REPO / "../shared").resolve()


@contextmanager
def general_path_only() -> Iterator[None]:
    """Every node walked by `walk_generic` (no generated walker), every field by its general path."""
    validate_resource({"resourceType": "Patient"})  # the generated walkers are installed on first use
    nodes = list(get_model().nodes.values())
    fields = [field for node in nodes for field in node.fields.values()]
    saved_fast = [field.fast for field in fields]
    saved_walkers = [node.walker for node in nodes]
    for field in fields:
        field.fast = GENERAL
    for node in nodes:
        node.walker = generic_walker(node)
    try:
        yield
    finally:
        for field, fast in zip(fields, saved_fast, strict=True):
            field.fast = fast
        for node, walker in zip(nodes, saved_walkers, strict=True):
            node.walker = walker


def _issues(resource: Any) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(i.code, i.diagnostics, i.expression) for i in validate_resource(resource)]


def _both(resource: Any) -> tuple[list[Any], list[Any]]:
    fast = _issues(copy.deepcopy(resource))
    with general_path_only():
        general = _issues(copy.deepcopy(resource))
    return fast, general


def _corpus() -> list[Path]:
    patterns = [
        "fhir-data/inferno-reference-server-data/*.json",
        "fhir-data/synthea-r4-sample/*.json",
        "fhir-data/carin-bb-test-kit-fixtures/*.json",
        "fhir-data/pdex-test-kit-fixtures/*.json",
        "ig/*/example/*.json",
    ]
    paths = [p for pattern in patterns for p in sorted(SHARED.glob(pattern))] if SHARED.is_dir() else []
    paths += sorted(FIXTURES.glob("*.json"))
    return [p for p in paths if not p.name.startswith(".")]


def _load(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError:
        return None


def test_the_quick_kinds_are_in_use() -> None:
    kinds = {field.fast for node in get_model().nodes.values() for field in node.fields.values()}
    assert {ONE_STRING, ONE_CODE, ONE_URI, ONE_DECIMAL, ONE_INTEGER} <= kinds


def _generated(walker: Any) -> bool:
    return bool(walker.__code__.co_filename.startswith("<validator walk"))


def test_small_nodes_have_generated_walkers() -> None:
    status = {"coding": [{"system": "http://x", "code": "M"}], "text": "married"}
    period = {"start": "2020-01-01"}
    extension = [{"url": "http://x", "valueString": "y"}]
    ref = {"reference": "Organization/o"}
    validate_resource(
        {"resourceType": "Patient", "maritalStatus": status, "telecom": [{"period": period}]}
        | {"extension": extension, "managingOrganization": ref}
    )
    validate_resource({"resourceType": "Invoice", "status": "draft", "totalNet": {"value": 1}})
    nodes = get_model().nodes
    for name in ("Coding", "CodeableConcept", "Reference", "Money", "Period", "Extension", "Patient"):
        assert _generated(nodes[name].walker), name
    assert nodes["Coding"].walker.__code__.co_filename == "<validator walk of Coding>"
    # A node with many fast fields finds a key's branch by number; a small one compares the keys.
    assert "BRANCH" in nodes["Patient"].walker.__globals__
    assert "BRANCH" not in nodes["Coding"].walker.__globals__


def test_a_large_node_walked_by_number_reports_like_the_general_path() -> None:
    """Every fast field of a large node, valid and then wrong, and keys it does not know or walks the
    general way: the same issues, in the same order, as `walk_generic` with general fields."""
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "active": True,
        "gender": "female",
        "birthDate": "1970-01-01",
        "multipleBirthInteger": 2,
        "deceasedBoolean": False,
        "name": [{"family": "Doe", "given": ["Ann"]}],
        "maritalStatus": {"coding": [{"system": "http://x", "code": "M"}]},
        "managingOrganization": {"reference": "Organization/o"},
        "implicitRules": "http://x",
        "language": "en",
    }
    fast, general = _both(patient)
    assert fast == general == []
    wrong = patient | {
        "id": "not an id!",
        "active": "yes",
        "birthDate": "1970-13-01",
        "multipleBirthInteger": 2.5,
        "deceasedDateTime": "2001",
        "name": {"family": "Doe"},
        "maritalStatus": [],
        "implicitRules": "has space",
        "nickname": "Annie",
    }
    fast, general = _both(wrong)
    assert fast == general
    assert len(fast) >= 8


def test_a_walker_is_made_on_its_nodes_first_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generated walkers are compiled when first needed, and then called directly by their parents."""
    fresh = build_model(read_vendored_index())
    monkeypatch.setattr(structure, "get_model", lambda: fresh)
    nodes = fresh.nodes
    patient = {"resourceType": "Patient", "maritalStatus": {"coding": [{"system": "x y", "code": "M"}]}}
    issues = _issues(patient)
    assert [expression for _, _, expression in issues] == [("Patient.maritalStatus.coding[0].system",)]
    assert _generated(nodes["Coding"].walker)
    assert _generated(nodes["CodeableConcept"].walker)
    assert not _generated(nodes["Money"].walker)  # never walked: still its stub
    parent = nodes["CodeableConcept"].walker.__globals__
    assert nodes["Coding"].walker in parent.values()  # the child's walker itself, no longer its stub
    assert _issues(patient) == issues
    monkeypatch.undo()
    assert _issues(patient) == issues  # what the shared model reports


def test_general_path_only_is_really_general() -> None:
    with general_path_only():
        nodes = get_model().nodes.values()
        assert {f.fast for n in nodes for f in n.fields.values()} == {GENERAL}
        assert not [n for n in nodes if n.walker.__code__.co_filename.startswith("<validator walk")]
    assert validate_resource({"resourceType": "Patient", "gender": "x y"})  # and restored afterwards


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: p.name)
def test_same_issues_on_every_example_instance(path: Path) -> None:
    resource = _load(path)
    if resource is None:
        pytest.skip("not JSON")
    fast, general = _both(resource)
    assert fast == general


# Values aimed at the quick checks' edges: every one is valid for some primitive type and invalid for others.
EDGES: list[Any] = [
    "",
    " ",
    "a b",
    "a  b",
    "#",
    "#c1",
    "# c1",
    "x\u00a0y",
    "tab\there",
    "new\nline",
    "\x00",
    "ü",
    "2023-02-31",
    "2023-01-05",
    "2023-01-05T10:00:00-05:00",
    "urn:uuid:not-one",
    "http://example.org/x y",
    "x" * (1024 * 1024 + 1),
    0,
    1,
    -1,
    2**31 - 1,
    2**31,
    -(2**31),
    -(2**31) - 1,
    1.0,
    1.5,
    float("nan"),
    True,
    False,
    None,
    [],
    ["a"],
    [None],
    {},
    {"a": 1},
    {"extension": [{"url": "http://x", "valueString": "v"}]},
]


def _spots(doc: Any) -> list[tuple[Any, Any]]:
    spots: list[tuple[Any, Any]] = []

    def visit(node: Any) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in list(items):
            spots.append((node, key))
            visit(child)

    visit(doc)
    return spots


def test_same_issues_on_mutated_instances() -> None:
    rng = random.Random(20261202)
    originals = [r for r in (_load(p) for p in sorted(FIXTURES.glob("*.json"))) if isinstance(r, dict)]
    carin = sorted(SHARED.glob("ig/carin-bb-*/example/ExplanationOfBenefit-*.json"))
    originals += [r for r in (_load(p) for p in carin) if isinstance(r, dict)]
    compared = 0
    for _ in range(1500):
        doc = copy.deepcopy(rng.choice(originals))
        for _ in range(rng.randint(1, 3)):
            spots = _spots(doc)
            if not spots:
                break
            parent, key = rng.choice(spots)
            value = copy.deepcopy(rng.choice(EDGES))
            if isinstance(parent, dict) and rng.random() < 0.15:
                parent["_" + str(key)] = value
            else:
                parent[key] = value
        fast, general = _both(doc)
        assert fast == general, doc
        compared += bool(fast)
    assert compared > 500  # most mutations are invalid somewhere


def test_issue_objects_are_identical() -> None:
    resource = {
        "resourceType": "Patient",
        "gender": "a b",
        "name": [{"family": "", "given": ["ok", 5]}],
        "multipleBirthInteger": 2**31,
        "contained": [{"resourceType": "Patient", "id": "c1"}],
        "managingOrganization": {"reference": "#c1", "display": 7},
        "photo": [{"url": "#c1", "size": -1}],
    }
    fast = validate_resource(copy.deepcopy(resource))
    with general_path_only():
        general = validate_resource(copy.deepcopy(resource))
    assert fast == general
    assert all(isinstance(issue, Issue) for issue in fast)
    assert len(fast) >= 5
