"""Valid Codings, Periods and CodeableConcepts are remembered (`walkers.MEMO_NODES`): never at the cost
of a verdict.

Each test validates a resource that puts a remembered object beside one that differs from it only in a way
the memo must not paper over, and expects the same issues as on first sight.
"""

from __future__ import annotations

from typing import Any

import pytest

from openpayer.fhir.validation import structure, validate_resource
from openpayer.fhir.validation.walkers import MEMO_SIZE, MEMO_TEXT


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
    assert _issues(_observation(good)) == []  # remembered, with its boolean
    assert _issues(_observation({**good, "userSelected": 1})) != []
    assert _issues(_observation({**good, "userSelected": "true"})) != []
    assert _issues(_observation({"system": "http://loinc.org", "code": "2", "userSelected": "true"})) != []


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


def _concept(code: str, **more: Any) -> dict[str, Any]:
    return {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/adjudication", "code": code}],
        **more,
    }


def test_a_remembered_concept_does_not_hide_a_wrong_coding_or_text() -> None:
    valid = _concept("submitted", text="Submitted")
    component = {"code": valid, "valueString": "x"}
    assert _issues(_observation({"code": "c"}, component=[component])) == []
    assert _issues(_observation({"code": "c"}, component=[component, component])) == []  # remembered
    wrong: list[Any] = [
        {**valid, "text": 1},
        {**valid, "text": ""},
        {"coding": [{"code": "submitted", "userSelected": "yes"}]},
        {"coding": [{"code": "submitted"}, None]},
        {"coding": []},
        {"coding": [{"code": " submitted"}]},
    ]
    for concept in wrong:
        assert _issues(_observation({"code": "c"}, component=[component, {**component, "code": concept}])), (
            concept
        )


def test_a_concept_with_an_extension_is_walked_every_time() -> None:
    """An extension may hold a reference: a conditional one is valid in a transaction's entries only."""
    conditional = {
        "url": "http://example.org/source",
        "valueReference": {"reference": "Patient?identifier=1"},
    }
    resource = _observation({"code": "c"}, category=[_concept("c", extension=[conditional])])
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:1",
                "resource": resource,
                "request": {"method": "POST", "url": "Observation"},
            }
        ],
    }
    assert _issues(bundle) == []
    assert any("conditional reference" in diagnostics for diagnostics, _ in _issues(resource))


def _consent(depth: int, code: str) -> dict[str, Any]:
    provision: dict[str, Any] = {"code": [_concept(code)]}
    for _ in range(depth):
        provision = {"provision": [provision]}
    scope = {"scope": {"text": "s"}, "category": [{"text": "c"}]}
    return {"resourceType": "Consent", "status": "active", **scope, "provision": provision}


def test_a_remembered_concept_too_deep_for_its_codings_is_reported_as_too_deep() -> None:
    assert _issues(_consent(1, "known")) == []
    too_deep = "nested more than 100 objects deep; not checked further"
    assert _issues(_consent(96, "known")) == []
    assert [diagnostics for diagnostics, _ in _issues(_consent(97, "fresh"))] == [too_deep]
    assert [diagnostics for diagnostics, _ in _issues(_consent(97, "known"))] == [too_deep]


def test_a_remembered_concept_still_counts_its_codings_against_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    components = [{"code": _concept("budget"), "valueString": "x"} for _ in range(10)]
    resource = _observation({"code": "c"}, component=components)
    assert _issues(resource) == []  # remembered; now 1 + 2 + 10 * 3 = 33 objects against a budget of 30
    monkeypatch.setattr(structure, "MAX_OBJECTS", 30)
    assert [issue.code for issue in validate_resource(resource)] == ["too-costly"]


def test_a_long_object_is_not_remembered() -> None:
    long_text = {"coding": [{"system": "http://x", "code": "long"}], "text": "t" * MEMO_TEXT}
    short = {"coding": [{"system": "http://x", "code": "short"}], "text": "t"}
    assert _issues(_observation({"code": "c"}, category=[long_text, short])) == []
    remembered = [text for node in ("CodeableConcept", "Coding") for text in _memo(node)]
    assert any(b'"short"' in text for text in remembered)
    assert not any(b'"t' + b"t" * 100 in text for text in remembered)


def _memo(node: str) -> list[bytes]:
    """What the generated walker of `node` remembers (its globals' MEMO)."""
    from openpayer.fhir.validation.structure import get_model

    walker = get_model().nodes[node].walker
    return list(walker.__globals__["MEMO"]) if "MEMO" in walker.__globals__ else []


# --- references (`structure._Validator.reference`) ---------------------------------------------------------


def _referring(**fields: Any) -> dict[str, Any]:
    """An Observation with nothing to report but what `fields` bring."""
    return _observation({"system": "http://loinc.org", "code": "r"}, **fields)


def test_a_remembered_reference_is_still_checked_against_where_it_is() -> None:
    """A literal valid in one place (Observation.subject: a Patient among others) is remembered with the
    types allowed there: the same literal where only another type is allowed is reported as on first
    sight, every time."""
    patient = {"reference": "Patient/remembered-1"}
    assert _issues(_referring(subject=patient)) == []
    assert _issues(_referring(subject=patient)) == []  # remembered now
    for _ in range(2):
        assert _issues(_referring(subject=patient, specimen=patient)) == [
            (
                "a reference to Patient is not allowed here (allowed: Specimen)",
                ("Observation.specimen.reference",),
            )
        ]


def test_a_remembered_reference_is_checked_against_its_declared_type() -> None:
    patient = {"reference": "Patient/remembered-2"}
    assert _issues(_referring(subject=patient)) == []
    assert _issues(_referring(subject={**patient, "type": "Patient"})) == []
    for _ in range(2):
        assert _issues(_referring(subject={**patient, "type": "Group"})) == [
            ("Reference.type Group does not match the reference to Patient", ("Observation.subject.type",))
        ]


def test_a_conditional_reference_remembered_in_a_transaction_is_refused_outside_one() -> None:
    observation = _referring(subject={"reference": "Patient?identifier=http://example.org|remembered-3"})
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": observation, "request": {"method": "POST", "url": "Observation"}}],
    }
    assert _issues(bundle) == []
    assert _issues(bundle) == []  # remembered, in a transaction
    for _ in range(2):
        [(diagnostics, _where)] = _issues(observation)
        assert "only allowed in a transaction or batch" in diagnostics


def test_an_invalid_reference_is_reported_every_time_and_the_memory_is_bounded() -> None:
    for _ in range(2):
        assert _issues(_referring(subject={"reference": "Nonsense/1"})) != []
    for n in range(structure._REFERENCES_KEPT + 10):
        structure._VALID_REFERENCES[(f"Patient/{n}", None, None, frozenset(), False)] = None
        if len(structure._VALID_REFERENCES) > structure._REFERENCES_KEPT:
            break
    assert _issues(_referring(subject={"reference": "Patient/after-the-flood"})) == []
    assert len(structure._VALID_REFERENCES) <= structure._REFERENCES_KEPT + 1
