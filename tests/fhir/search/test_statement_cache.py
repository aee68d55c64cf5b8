"""Statements built once per query shape (`openpayer.fhir.search.statements`), on both databases.

A search of a shape seen before binds its own values into the statement built for the first one; these
tests check that the values really are rebound (other values, other results), that shapes differing only
in their SQL's structure (a modifier, a token's system, a date prefix, a page position) never share a
statement, and that the first page's count, now made in the page query, is exact.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from openpayer.db import read_connection
from openpayer.fhir.paging import CursorSigner
from openpayer.fhir.search.bundle import SearchResult
from openpayer.fhir.search.pages import PageStatement
from openpayer.fhir.search.registry import default_registry
from openpayer.fhir.search.service import SearchService
from openpayer.fhir.search.statements import StatementCache

BASE = "http://testserver/fhir"


def _practitioner(i: int, family: str, zip_code: str) -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "Practitioner",
            "id": f"pr{i}",
            "name": [{"family": family, "given": ["Ann"]}],
            "identifier": [{"system": "urn:npi", "value": f"npi{i}"}],
        },
        {"resourceType": "Location", "id": f"loc{i}", "address": {"postalCode": zip_code}},
        {
            "resourceType": "PractitionerRole",
            "id": f"role{i}",
            "practitioner": {"reference": f"Practitioner/pr{i}"},
            "location": [{"reference": f"Location/loc{i}"}],
            "specialty": [{"coding": [{"system": "urn:nucc", "code": "S1" if i % 2 else "S2"}]}],
            "meta": {"lastUpdated": "2024-01-01T00:00:00Z"},
        },
    ]


FAMILIES = ["Roberts", "Robinson", "Rodriguez", "Smith", "Smithers", "Jones"]


@pytest.fixture
def directory(store) -> tuple[Any, str, SearchService]:
    env = f"cache-{uuid.uuid4().hex[:8]}"
    resources = []
    for i, family in enumerate(FAMILIES):
        resources.extend(_practitioner(i, family, f"6660{i % 3}"))
    store.put(resources, env=env)
    service = SearchService(default_registry(), CursorSigner("test-secret"), default_count=50, max_count=200)
    return store, env, service


def _search(directory, rtype: str, query: list[tuple[str, str]], **kw: Any) -> SearchResult:
    store, env, service = directory
    with read_connection(store.engine) as conn:
        return service.search(conn, env, rtype, query, base_url=BASE, **kw)


def _ids(result: SearchResult) -> list[str]:
    return sorted(e.id for e in result.matches)


def test_the_same_shape_with_other_values_binds_them(directory) -> None:
    service: SearchService = directory[2]
    assert _ids(_search(directory, "Practitioner", [("name", "rob")])) == ["pr0", "pr1"]
    built = len(service.statements)
    assert _ids(_search(directory, "Practitioner", [("name", "smi")])) == ["pr3", "pr4"]
    assert _ids(_search(directory, "Practitioner", [("name", "jon")])) == ["pr5"]
    assert _ids(_search(directory, "Practitioner", [("name", "zzz")])) == []
    assert len(service.statements) == built  # one statement served the four
    assert service.statements.hits >= 3


def test_chains_and_includes_rebind_their_values(directory) -> None:
    def roles(specialty: str, zip_code: str) -> tuple[list[str], list[str]]:
        result = _search(
            directory,
            "PractitionerRole",
            [
                ("specialty", specialty),
                ("location.address-postalcode", zip_code),
                ("_include", "PractitionerRole:practitioner"),
            ],
        )
        return _ids(result), sorted(e.id for e in result.included)

    assert roles("S2", "66600") == (["role0"], ["pr0"])
    assert roles("S1", "66601") == (["role1"], ["pr1"])
    assert roles("urn:nucc|S1", "66600") == (["role3"], ["pr3"])
    assert roles("S2", "66602") == (["role2"], ["pr2"])
    assert roles("S1", "99999") == ([], [])


def test_a_cached_page_runs_on_the_driver_on_postgresql(directory) -> None:
    """From the second search of a shape, PostgreSQL runs the page and its folded include on psycopg's
    cursor (`db.DriverStatement`: compiled once, the allowed types' IN list rendered into it); SQLite, and
    the first search, through SQLAlchemy. The rows are the same either way."""
    store, _env, service = directory

    def roles(specialty: str, zip_code: str) -> tuple[list[str], list[str]]:
        query = [
            ("specialty", specialty),
            ("location.address-postalcode", zip_code),
            ("_include", "PractitionerRole:practitioner"),
        ]
        result = _search(directory, "PractitionerRole", query)
        return _ids(result), sorted(e.id for e in result.included)

    def compiled_pages() -> list[PageStatement]:
        cached = service.statements._items.values()
        return [s for s in cached if isinstance(s, PageStatement) and s.driver._sql is not None]

    assert roles("S2", "66600") == (["role0"], ["pr0"])
    assert compiled_pages() == []  # the first search of the shape: built, and run through SQLAlchemy
    assert roles("S1", "66601") == (["role1"], ["pr1"])
    assert roles("S2", "66602") == (["role2"], ["pr2"])
    on_driver = compiled_pages()
    if store.engine.dialect.name == "postgresql":
        assert len(on_driver) == 1
        assert on_driver[0].folded is not None
        assert on_driver[0].driver._refused is None
    else:
        assert on_driver == []


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # a modifier, a token's system, a date prefix, the number of values: another statement each
        ([("name", "Smith")], [("name:exact", "Smith")]),
        ([("name", "smi")], [("name:contains", "mith")]),
        ([("identifier", "npi3")], [("identifier", "urn:npi|npi4")]),
        ([("identifier", "urn:npi|npi3")], [("identifier", "|npi3")]),
        ([("_id", "pr1")], [("_id", "pr1,pr2")]),
        ([("_lastUpdated", "ge2000-01-01")], [("_lastUpdated", "le2000-01-01")]),
        ([("name", "rob")], [("name", "rob"), ("_count", "1")]),
        ([("name", "rob")], [("family", "rob")]),
    ],
)
def test_shapes_that_differ_in_structure_do_not_share_a_statement(directory, first, second) -> None:
    store, env, _ = directory
    fresh = (directory[0], env, SearchService(default_registry(), CursorSigner("s"), default_count=50))
    expected_first = _ids(store.search("Practitioner", first, env=env))
    expected_second = _ids(store.search("Practitioner", second, env=env))
    assert _ids(_search(fresh, "Practitioner", first)) == expected_first
    assert _ids(_search(fresh, "Practitioner", second)) == expected_second
    assert len(fresh[2].statements) == 2


def test_exact_and_prefix_matches_stay_apart(directory) -> None:
    assert _ids(_search(directory, "Practitioner", [("name", "Smith")])) == ["pr3", "pr4"]
    assert _ids(_search(directory, "Practitioner", [("name:exact", "Smith")])) == ["pr3"]
    assert _ids(_search(directory, "Practitioner", [("name", "Smith")])) == ["pr3", "pr4"]


def test_pages_rebind_their_position_and_the_first_page_counts_exactly(directory) -> None:
    seen: list[str] = []
    result = _search(directory, "Practitioner", [("_count", "2")])
    assert result.total == 6  # counted by the page query (more rows follow)
    while True:
        seen.extend(e.id for e in result.matches)
        link = result.link("next")
        if link is None:
            break
        result = _search(directory, "Practitioner", [], page_token=link.split("_page_token=")[1])
        assert result.total == 6  # carried
    assert sorted(seen) == [f"pr{i}" for i in range(6)]
    assert len(seen) == 6
    assert _search(directory, "Practitioner", [("_count", "2"), ("_total", "none")]).total is None
    assert _search(directory, "Practitioner", [("_summary", "count")]).total == 6
    counted = _search(directory, "Practitioner", [("name", "ro"), ("_count", "1")])  # in the page query
    assert (len(counted.matches), counted.total) == (1, 3)
    sorted_first = _search(directory, "Practitioner", [("name", "s"), ("_sort", "family"), ("_count", "1")])
    assert ([e.id for e in sorted_first.matches], sorted_first.total) == (["pr3"], 2)
    assert _search(directory, "Practitioner", [("name", "s"), ("_summary", "count")]).total == 2


def test_sorted_pages_rebind_their_position(directory) -> None:
    first = _search(directory, "Practitioner", [("_sort", "-family"), ("_count", "4")])
    assert [e.id for e in first.matches] == ["pr4", "pr3", "pr2", "pr1"]
    assert first.total == 6
    link = first.link("next")
    assert link is not None
    second = _search(directory, "Practitioner", [], page_token=link.split("_page_token=")[1])
    assert [e.id for e in second.matches] == ["pr0", "pr5"]


def test_the_cache_is_bounded_and_keeps_the_recently_used() -> None:
    cache = StatementCache(size=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)  # "b" was the least recently used
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c"), len(cache)) == (1, 3, 2)
