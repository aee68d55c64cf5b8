"""First pages read from the index tables alone (`openpayer.fhir.search.driven`, PostgreSQL).

The rewrite relies on an invariant of the writers: index rows exist only for the current, undeleted version
of a resource of their key's environment and type. These tests put a deleted resource, an updated one, the
same names in another environment and on another type beside the matches, and require the exact pages,
counts and following pages that the resource-driven statement gives, on both databases (SQLite always takes
the resource-driven statement, so there the comparison holds trivially and the expectations still apply).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import openpayer.fhir.search.pages as search_pages
from openpayer.db import read_connection
from openpayer.fhir.paging import CursorSigner
from openpayer.fhir.search.bundle import SearchResult
from openpayer.fhir.search.registry import default_registry
from openpayer.fhir.search.service import SearchService

BASE = "http://testserver/fhir"
FAMILIES = ["Roberts", "Robinson", "Rodriguez", "Smith", "Smithers", "Jones", "Robles", "Rook"]


def _practitioner(i: int, family: str) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": f"pr{i}",
        "name": [{"family": family, "given": ["Ann" if i % 2 else "Bo"]}],
        "gender": "female" if i % 2 else "male",
        "identifier": [{"system": "urn:npi", "value": f"npi{i}"}],
    }


def _role(i: int) -> list[dict[str, Any]]:
    """A role of practitioner i at a location of its own (ZIP 6660x), specialty S1 or S2."""
    return [
        {"resourceType": "Location", "id": f"loc{i}", "address": {"postalCode": f"6660{i % 3}"}},
        {
            "resourceType": "PractitionerRole",
            "id": f"role{i}",
            "practitioner": {"reference": f"Practitioner/pr{i}"},
            "location": [{"reference": f"Location/loc{i}"}],
            "specialty": [{"coding": [{"system": "urn:nucc", "code": "S1" if i % 2 else "S2"}]}],
        },
    ]


@pytest.fixture
def world(store) -> tuple[Any, str]:
    env = f"driven-{uuid.uuid4().hex[:8]}"
    store.put([_practitioner(i, family) for i, family in enumerate(FAMILIES)], env=env)
    store.put([resource for i in range(len(FAMILIES)) for resource in _role(i)], env=env)
    store.delete("PractitionerRole", "role3", env=env)  # S1 at 66600: deleted
    store.delete("Practitioner", "pr6", env=env)  # Robles: deleted, its index rows gone
    store.put([_practitioner(7, "Zimmer")], env=env)  # Rook, renamed: no longer a "ro…"
    store.put([_practitioner(90, "Roberts")], env=f"{env}-other")  # same name, another environment
    patient = {"resourceType": "Patient", "id": "pa1", "name": [{"family": "Roberts"}], "gender": "female"}
    store.put([patient], env=env)  # same name, another type
    return store, env


def _service() -> SearchService:
    """A service of its own: statements are cached per service, so each keeps the form it built."""
    return SearchService(default_registry(), CursorSigner("test-secret"), default_count=50, max_count=200)


def _pages(
    store: Any, env: str, service: SearchService, query: list[tuple[str, str]], rtype: str = "Practitioner"
) -> list[Any]:
    """Every page of `rtype?query`, following `next`: (ids, total) each."""
    out = []
    token = None
    while True:
        with read_connection(store.engine) as conn:
            result: SearchResult = service.search(
                conn, env, rtype, [] if token else query, base_url=BASE, page_token=token
            )
        out.append(([e.id for e in result.matches], result.total))
        link = result.link("next")
        if link is None:
            return out
        token = link.split("_page_token=")[1]


QUERIES = [
    [("name", "ro")],
    [("family", "rob"), ("_count", "1")],
    [("name", "ro"), ("gender", "female")],
    [("name", "ro"), ("gender:not", "female")],
    [("name:exact", "Roberts")],
    [("name:contains", "ob")],
    [("identifier", "urn:npi|")],
    [("identifier", "urn:npi|npi1,urn:npi|npi6,urn:npi|npi90")],
    [("gender", "female"), ("name", "s"), ("_count", "1")],
    # two criteria on the driver's own index table: the other one must not be correlated with the driver
    [("gender", "female"), ("identifier", "urn:npi|"), ("_count", "2")],
    [("identifier", "urn:npi|"), ("gender:not", "female")],
    [("name", "ro"), ("family", "rob")],
    [("name", "ro"), ("_total", "accurate"), ("_count", "2")],
    [("name", "zzz")],
    [("_type", "PractitionerRole"), ("specialty", "S1"), ("location.address-postalcode", "6660")],
    [("_type", "PractitionerRole"), ("specialty", "S1,S2"), ("practitioner.name", "ro"), ("_count", "1")],
    [("_type", "PractitionerRole"), ("specialty", "S2"), ("location.address-postalcode", "66601")],
]


def _split(query: list[tuple[str, str]]) -> tuple[str, list[tuple[str, str]]]:
    """The type a test query names (`_type` here is only this file's way to say it) and the query."""
    rtype = next((v for k, v in query if k == "_type"), "Practitioner")
    return rtype, [(k, v) for k, v in query if k != "_type"]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: "&".join(f"{k}={v}" for k, v in q))
def test_index_driven_pages_equal_the_resource_driven_ones(world, query, monkeypatch) -> None:
    store, env = world
    real = search_pages.index_driven_page
    taken: list[bool] = []

    def watched(*args: Any) -> Any:
        statement = real(*args)
        taken.append(statement is not None)
        return statement

    monkeypatch.setattr(search_pages, "index_driven_page", watched)
    rtype, query = _split(query)
    driven = _pages(store, env, _service(), query, rtype)
    assert taken == ([True] if store.backend == "postgresql" else [])  # the first page, PostgreSQL only
    monkeypatch.setattr(search_pages, "index_driven_page", lambda *args: None)
    assert _pages(store, env, _service(), query, rtype) == driven


def test_deleted_renamed_other_environment_and_other_type_are_not_matches(world) -> None:
    store, env = world
    pages = _pages(store, env, _service(), [("name", "ro"), ("_count", "2")])
    assert [ids for ids, _ in pages] == [["pr0", "pr1"], ["pr2"]]
    assert pages[0][1] == 3  # the first page's count: Roberts, Robinson, Rodriguez
    only_female = _pages(store, env, _service(), [("name", "rob"), ("gender", "female")])
    assert only_female == [(["pr1"], 1)]
    assert _pages(store, env, _service(), [("identifier", "urn:npi|npi6")]) == [([], 0)]
    s1_at_66600 = [("specialty", "S1"), ("location.address-postalcode", "66600")]
    assert _pages(store, env, _service(), s1_at_66600, "PractitionerRole") == [([], 0)]  # role3: deleted
    s2_at_66600 = [("specialty", "S2"), ("location.address-postalcode", "66600")]
    assert _pages(store, env, _service(), s2_at_66600, "PractitionerRole") == [(["role0", "role6"], 2)]
