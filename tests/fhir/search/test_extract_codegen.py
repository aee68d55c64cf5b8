"""The extraction generated per resource type against the plan loop it replaces: the same rows, in order."""

from __future__ import annotations

import copy
import json
import logging
import random
from pathlib import Path
from typing import Any

import pytest

from openpayer.fhir.search import extract
from openpayer.fhir.search.extract import extract_index
from openpayer.fhir.search.registry import default_registry

from .test_extract import _example_files, _instances

# Shapes a resource should not have, and some it may: what the generated walk must treat as the plan does.
ODD_VALUES: list[Any] = [
    None,
    "",
    "text",
    "2020-02-30",
    "Patient/p1",
    7,
    2.5,
    True,
    False,
    [],
    [None],
    [None, "x", 3],
    [[{"reference": "Patient/p2"}]],
    {},
    {"reference": "Practitioner/x"},
    {"reference": "Patient/p1", "identifier": {"value": "id"}},
    {"reference": 12},
    {"resourceType": "Patient", "id": "inline"},
    {"resourceType": "Patient", "id": "inline", "reference": "Patient/p3"},
    {"coding": "not a list"},
    {"coding": [None, {"system": "s", "code": "c"}]},
    {"start": "2020", "end": 5},
    {"repeat": "not an object"},
    {"event": ["2021-01-01", None]},
    {"value": "v", "system": "phone"},
    {"low": {"value": 1}, "high": "x"},
    {"url": "http://example.org", "valueString": "inside"},
]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _replaced(resource: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(resource)
    node: Any = changed
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = copy.deepcopy(value)
    return changed


def _both(resources: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], list[Any]]:
    """Each resource's rows by the generated extraction, then by the plan loop alone."""
    generated = [extract_index(resource) for resource in resources]
    with monkeypatch.context() as patch:
        patch.setattr(extract, "_PLANS", type(extract._PLANS)())
        patch.setattr(extract, "GENERATE", False)
        looped = [extract_index(resource) for resource in resources]
    return generated, looped


@pytest.mark.parametrize("path", _example_files())
def test_generated_extraction_gives_the_plan_loops_rows_in_order(
    path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    resources = _instances(json.loads(path.read_text(encoding="utf-8-sig")))
    with caplog.at_level(logging.DEBUG, logger=extract.__name__):
        generated, looped = _both(resources, monkeypatch)
    assert generated == looped
    assert not _fell_back(caplog), "a valid resource must not need the plan loop"


def _fell_back(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("generated extraction of")]


def test_generated_extraction_of_odd_shapes_is_the_plan_loops(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Every example type, each with values replaced by odd shapes at a few hundred places: the rows are
    the plan loop's, including where a converter raises and the whole resource goes to the plan loop."""
    files = [f for param in _example_files() for f in param.values if isinstance(f, Path)]
    if not files:
        pytest.skip("the shared examples are not beside the repo")
    chosen: dict[str, dict[str, Any]] = {}
    for file in files:
        for resource in _instances(json.loads(file.read_text(encoding="utf-8-sig"))):
            chosen.setdefault(resource["resourceType"], resource)
    draw = random.Random(20261205)
    variants = []
    for resource in chosen.values():
        paths = _paths(resource)
        for path in draw.sample(paths, min(len(paths), 12)):
            variants.append(_replaced(resource, path, draw.choice(ODD_VALUES)))
        for key in draw.sample(sorted(k for k in resource if k != "resourceType"), min(len(resource) - 1, 4)):
            for value in ODD_VALUES:
                variants.append(_replaced(resource, (key,), value))
    assert len(variants) > 1000
    with caplog.at_level(logging.DEBUG, logger=extract.__name__):
        generated, looped = _both(variants, monkeypatch)
    assert generated == looped
    assert _fell_back(caplog), "no odd shape made a converter raise: the fallback went untested"


def test_every_type_with_parameters_has_a_generated_extraction() -> None:
    registry = default_registry()
    types = sorted({param.base for param in registry})
    plans = [extract._plan(registry, rtype, False) for rtype in types]
    assert all(plan.generated is not None for plan in plans)
    inline = sum(entry.members is not None for plan in plans for entry in plan.entries)
    called = sum(entry.members is None for plan in plans for entry in plan.entries)
    assert inline > 3 * called  # most parameters are plain member paths
    eob = extract._plan(registry, "ExplanationOfBenefit", False).generated
    assert eob is not None
    assert eob.source.count("get('item')") == 1  # a shared prefix walked once
