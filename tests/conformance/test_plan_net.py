"""Da Vinci Plan-Net 1.1.0 on `/{env}/directory`: every SHALL search, forward chain, reverse chain (`_has`),
`_include` and `_revinclude` of the `plan-net` statement, and parameterless paging through a type.

Data: the IG's examples, plus a few linking entries of ours (`data/plan-net-links.json`). Networks and
organizations are both Organization, told apart by type `ntwk`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

GUIDE = "plan-net"
API = "directory"
# The examples leave some links out (no Endpoint names its organization, no Location is part of another,
# ...); `plan-net-links.json` adds a few directory entries that link to the examples so that every chain,
# `_include` and `_revinclude` of the statement is exercised.
SOURCES: list[str | Path] = [
    "ig/plan-net-1.1.0/example",
    Path(__file__).with_name("data") / "plan-net-links.json",
]
EXPECTED_REJECTIONS: dict[str, str] = {}
KNOWN_FAILURES: dict[str, str] = {}
NETWORK = "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/OrgTypeCS|ntwk"


def test_shall_search(case: Any, conformance: Any) -> None:
    conformance(case, KNOWN_FAILURES)


def test_examples_load(dataset: Any) -> None:
    assert dataset.rejected == (EXPECTED_REJECTIONS if dataset.name == "examples" else {})


def _types(resource: dict[str, Any]) -> set[str]:
    return {
        f"{c.get('system')}|{c.get('code')}" for t in resource.get("type", []) for c in t.get("coding", [])
    }


def test_networks_and_organizations_are_told_apart_by_type(dataset: Any) -> None:
    organizations = dataset.of_type("Organization")
    networks = {o["id"] for o in organizations if NETWORK in _types(o)}
    assert networks, "the data has no network"
    found = _ids(dataset, "Organization", [("type", NETWORK)])
    assert found == networks
    others = _ids(dataset, "Organization", [("type:not", NETWORK)])
    assert others == {o["id"] for o in organizations} - networks


def test_parameterless_search_pages_through_every_type(dataset: Any) -> None:
    for rtype in ("Organization", "Practitioner", "PractitionerRole", "Location", "HealthcareService"):
        assert _ids(dataset, rtype, [("_count", "2")]) == {r["id"] for r in dataset.of_type(rtype)}
        assert _ids(dataset, rtype, []) == {r["id"] for r in dataset.of_type(rtype)}


def _ids(dataset: Any, rtype: str, params: list[tuple[str, str]]) -> set[str]:
    url: str | None = f"/{dataset.env}/directory/{rtype}"
    query: list[tuple[str, str]] | None = params
    found: list[str] = []
    while url is not None:
        response = dataset.client.get(url, params=query, headers=dataset.headers)
        assert response.status_code == 200, response.text[:500]
        bundle = response.json()
        found += [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        query = None
    assert len(found) == len(set(found)), "a resource was repeated across pages"
    return set(found)
