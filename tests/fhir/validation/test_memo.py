"""Valid Codings and Periods are remembered (`walkers.MEMO_NODES`): never at the cost of a verdict.

Each test validates a resource that puts a remembered object beside one that differs from it only in a way
the memo must not paper over, and expects the same issues as on first sight.
"""

from __future__ import annotations

from typing import Any

from openpayer.fhir.validation import validate_resource
from openpayer.fhir.validation.walkers import MEMO_SIZE


def _observation(coding: Any, **more: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"coding": [coding]}, **more}


def _issues(resource: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    return [(issue.diagnostics, issue.expression) for issue in validate_resource(resource) if issue.is_error]


def test_a_remembered_coding_does_not_hide_a_value_of_another_type() -> None:
    valid = {"system": "http://loinc.org", "code": "1", "display": "x"}
    assert _issues(_observation(valid)) == []
    assert _issues(_observation(valid)) == []  # remembered now
    for wrong in (1, True, 1.0, ["1"], {"value": "1"}, None):
        issues = _issues(_observation({**valid, "code": wrong}))
        assert issues, wrong
        assert issues[0][1] == ("Observation.code.coding[0].code",), wrong


def test_a_boolean_is_checked_every_time() -> None:
    good = {"system": "http://loinc.org", "code": "2", "userSelected": True}
    assert _issues(_observation(good)) == []
    assert _issues(_observation({**good, "userSelected": 1})) != []
    assert _issues(_observation({**good, "userSelected": "true"})) != []


def test_a_coding_that_points_at_a_contained_resource_still_counts_for_dom_3() -> None:
    resource = _observation(
        {"system": "#vs", "code": "a"},
        contained=[{"resourceType": "ValueSet", "id": "vs", "status": "active"}],
    )
    assert _issues(resource) == []
    assert _issues(resource) == []  # the second time, "#vs" still refers to the contained ValueSet
    unreferenced = _observation({"system": "http://x", "code": "a"}, contained=resource["contained"])
    assert _issues(unreferenced) == _issues(unreferenced) != []


def test_an_invalid_coding_is_reported_every_time() -> None:
    bad = {"system": "http://loinc.org", "code": " leading"}
    first = _issues(_observation(bad))
    assert first
    assert _issues(_observation(bad)) == first


def test_periods_and_the_memo_filling_up() -> None:
    for i in range(MEMO_SIZE + 10):  # past the bound the memo starts again
        assert _issues(_observation({"system": "http://x", "code": f"c{i}"})) == []
    period = {"start": "2024-01-01", "end": "2024-02-01"}
    effective = {"effectivePeriod": period}
    assert _issues(_observation({"code": "p"}, **effective)) == []
    assert _issues(_observation({"code": "p"}, effectivePeriod={**period, "end": "2024-13-01"})) != []
    assert _issues(_observation({"code": "p"}, effectivePeriod={**period, "end": 20240201})) != []
