"""SMART scopes, v1 and v2, reduced to what a read-only Patient Access API grants."""

from __future__ import annotations

import pytest

from openpayer.oauth.scopes import Access, parse_resource_scope, parse_scopes

TYPES = {"Observation", "Patient", "ExplanationOfBenefit"}


@pytest.mark.parametrize(
    ("text", "granted"),
    [
        ("patient/ExplanationOfBenefit.read", "patient/ExplanationOfBenefit.read"),
        ("patient/*.read", "patient/*.read"),
        ("patient/*.*", "patient/*.read"),
        ("patient/*.rs", "patient/*.rs"),
        ("patient/Observation.cruds", "patient/Observation.rs"),
        ("patient/Observation.s", "patient/Observation.s"),
        ("user/Patient.r", "user/Patient.r"),
        ("patient/Observation.rs?category=laboratory", "patient/Observation.rs?category=laboratory"),
        ("patient/Observation.write", None),
        ("patient/Observation.cud", None),
        ("patient/Observation.sr", None),  # v2 permissions are ordered c r u d s
        ("patient/Bogus.read", None),
        ("patient/Observation.read?category=x", None),  # queries are v2 only
        ("patient/*.rs?category=x", None),
        ("patient/Observation.rs?", None),
        ("Observation.read", None),
    ],
)
def test_resource_scopes(text: str, granted: str | None) -> None:
    parsed = parse_resource_scope(text, TYPES)
    assert (parsed.text if parsed else None) == granted


def test_parse_scopes_keeps_order_drops_unknown_and_duplicates() -> None:
    parsed = parse_scopes(
        "openid launch/patient patient/*.read launch openid system/*.rs fhirUser", known_types=TYPES
    )
    assert parsed.granted == ["openid", "launch/patient", "fhirUser", "patient/*.read"]
    assert parsed.dropped == ["launch", "system/*.rs"]


def test_access_decisions() -> None:
    access = Access.from_scope("patient/Observation.rs?category=laboratory patient/Patient.r openid")
    assert access.allows("Observation", "s")
    assert access.allows("Patient", "r")
    assert not access.allows("Patient", "s")
    assert not access.allows("Coverage", "r")
    assert access.bounded_types() == {"Observation": [(("category", "laboratory"),)]}
    assert not access.searches_everything
    assert Access.from_scope("patient/*.read").searches_everything
    # An unbounded grant of the same type lifts the granular bound.
    assert (
        Access.from_scope("patient/Observation.rs?category=x patient/Observation.read").bounded_types() == {}
    )
