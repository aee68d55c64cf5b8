"""The first `_include` folded into the page's statement (`openpayer.fhir.search.pages`, PostgreSQL).

Each search below runs through two services of their own (statements are cached per service and keyed by
the search's shape, so one service would serve the first form's statement to the second): one folds, one
runs the include as a statement of its own. Every page's Bundle (entries, their order and `search.mode`,
total, links, issues) must be the same, beside an include target that is also a match, a deleted target,
a target that exists only in another environment, `:iterate`, two includes that find the same resources,
and an include cap. On PostgreSQL the folding must also have happened (one statement for a first page with
one include); SQLite never folds, and the comparison and the expectations still hold there.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from sqlalchemy import event

from openpayer.db import read_connection
from openpayer.fhir.paging import CursorSigner
from openpayer.fhir.search.bundle import render_searchset
from openpayer.fhir.search.registry import default_registry
from openpayer.fhir.search.service import SearchService

BASE = "http://testserver/fhir"


def _role(i: int, practitioner: str, location: str = "site0", specialty: str = "S1") -> dict[str, Any]:
    return {
        "resourceType": "PractitionerRole",
        "id": f"role{i}",
        "practitioner": {"reference": f"Practitioner/{practitioner}"},
        "organization": {"reference": "Organization/acme"},
        "location": [{"reference": f"Location/{location}"}],
        "specialty": [{"coding": [{"system": "urn:nucc", "code": specialty}]}],
    }


def _location(lid: str, zip_code: str, part_of: str | None = None) -> dict[str, Any]:
    location: dict[str, Any] = {"resourceType": "Location", "id": lid, "address": {"postalCode": zip_code}}
    if part_of is not None:
        location["partOf"] = {"reference": f"Location/{part_of}"}
    return location


def _organization(oid: str, name: str, part_of: str | None = None) -> dict[str, Any]:
    organization: dict[str, Any] = {"resourceType": "Organization", "id": oid, "name": name}
    if part_of is not None:
        organization["partOf"] = {"reference": f"Organization/{part_of}"}
    return organization


@pytest.fixture
def world(store) -> tuple[Any, str]:
    env = f"folded-{uuid.uuid4().hex[:8]}"
    practitioners = [
        {"resourceType": "Practitioner", "id": f"pr{i}", "name": [{"family": f"Roe{i}"}]} for i in range(6)
    ]
    store.put(practitioners, env=env)
    store.put(
        [{"resourceType": "Practitioner", "id": "pr9", "name": [{"family": "Elsewhere"}]}], env=f"{env}-x"
    )
    store.put(
        [
            _location("system", "77799"),
            _location("campus", "77798", "system"),
            _location("site0", "77700", "campus"),
            _location("site1", "77701"),
            _organization("acme", "Acme"),
            _organization("acme-west", "Acme West", "acme"),  # its include target is a match itself
            _organization("beta", "Beta"),
            _organization("acme-east", "Acme East", "beta"),
        ],
        env=env,
    )
    roles = [_role(i, f"pr{i}") for i in range(6)]
    roles.append(_role(6, "pr0"))  # a target two matches share
    roles.append(_role(7, "pr9"))  # its target exists only in another environment
    roles.append(_role(8, "nobody"))  # its target does not exist
    roles.append(_role(10, "pr5", "site1"))  # another ZIP
    roles.append(_role(11, "pr4", specialty="S2"))
    store.put(roles, env=env)
    store.delete("Practitioner", "pr2", env=env)  # role2's target: deleted
    store.delete("PractitionerRole", "role3", env=env)  # a deleted match: its target is not included
    return store, env


def _service(fold: bool, include_cap: int = 1000) -> SearchService:
    return SearchService(
        default_registry(),
        CursorSigner("test-secret"),
        default_count=50,
        max_count=200,
        include_cap=include_cap,
        fold_includes=fold,
    )


def _pages(store: Any, env: str, service: SearchService, rtype: str, query: str) -> list[dict[str, Any]]:
    """Every page of `rtype?query`, following `next`: each Bundle without its id and time."""
    params = [tuple(part.split("=", 1)) for part in query.split("&")]
    out = []
    token = None
    while True:
        with read_connection(store.engine) as conn:
            result = service.search(
                conn, env, rtype, [] if token else params, base_url=BASE, page_token=token
            )
        bundle = orjson.loads(render_searchset(result))
        del bundle["id"], bundle["meta"]
        out.append(bundle)
        link = result.link("next")
        if link is None:
            return out
        token = link.split("_page_token=")[1]


def _entries(bundle: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (e["search"]["mode"], f"{e['resource']['resourceType']}/{e['resource'].get('id', '')}")
        for e in bundle.get("entry", [])
    ]


ROLES = "specialty=S1&location.address-postalcode=77700"
SEARCHES = [
    ("PractitionerRole", f"{ROLES}&_include=PractitionerRole:practitioner"),
    ("PractitionerRole", f"{ROLES}&_include=PractitionerRole:practitioner&_count=2"),
    ("PractitionerRole", f"{ROLES}&_include=PractitionerRole:practitioner:Practitioner&_count=3"),
    ("PractitionerRole", f"{ROLES}&_include=PractitionerRole:location&_include:iterate=Location:partof"),
    ("PractitionerRole", f"{ROLES}&_include=PractitionerRole:*&_include=PractitionerRole:practitioner"),
    ("PractitionerRole", "specialty=S1,S2&_include=PractitionerRole:organization"),
    ("PractitionerRole", "specialty=S9&_include=PractitionerRole:practitioner"),
    ("PractitionerRole", f"{ROLES}&_include=PractitionerRole:practitioner&_elements=id"),
    ("Organization", "name=acme&_include=Organization:partof"),
    ("Organization", "name=acme&_revinclude=PractitionerRole:organization&_include=Organization:partof"),
    ("Organization", "name=acme&_include:iterate=Organization:partof&_count=1"),
    ("Location", "address-postalcode=777&_include=Location:partof"),
]


@pytest.mark.parametrize(("rtype", "query"), SEARCHES, ids=[f"{t}?{q}" for t, q in SEARCHES])
def test_folded_pages_equal_the_unfolded_ones(world, rtype: str, query: str) -> None:
    store, env = world
    folded = _pages(store, env, _service(True), rtype, query)
    assert folded == _pages(store, env, _service(False), rtype, query)


@pytest.mark.parametrize("cap", [1, 3, 4])
def test_the_include_cap_is_the_same_folded(world, cap: int) -> None:
    store, env = world
    query = f"{ROLES}&_include=PractitionerRole:practitioner&_include=PractitionerRole:location"
    folded = _pages(store, env, _service(True, cap), "PractitionerRole", query)
    assert folded == _pages(store, env, _service(False, cap), "PractitionerRole", query)
    included = [e for e in _entries(folded[0]) if e[0] == "include"]
    assert len(included) == cap
    assert folded[0]["entry"][-1]["search"]["mode"] == "outcome"  # "capped" warning


def test_folded_entries(world) -> None:
    """The expected Bundle, so that a difference both forms share would show too."""
    store, env = world
    service = _service(True)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "fhir_resource" in statement:
            statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        (page,) = _pages(
            store, env, service, "PractitionerRole", f"{ROLES}&_include=PractitionerRole:practitioner"
        )
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert _entries(page) == [
        ("match", "PractitionerRole/role0"),
        ("match", "PractitionerRole/role1"),
        ("match", "PractitionerRole/role2"),
        ("match", "PractitionerRole/role4"),
        ("match", "PractitionerRole/role5"),
        ("match", "PractitionerRole/role6"),
        ("match", "PractitionerRole/role7"),
        ("match", "PractitionerRole/role8"),
        ("include", "Practitioner/pr0"),  # once, though role0 and role6 both refer to it
        ("include", "Practitioner/pr1"),
        ("include", "Practitioner/pr4"),
        ("include", "Practitioner/pr5"),
    ]
    assert page["total"] == 8
    assert len(statements) == (1 if store.backend == "postgresql" else 2)

    (organizations,) = _pages(store, env, service, "Organization", "name=acme&_include=Organization:partof")
    assert _entries(organizations) == [
        ("match", "Organization/acme"),
        ("match", "Organization/acme-west"),
        ("match", "Organization/acme-east"),
        ("include", "Organization/beta"),  # acme, acme-west's target, is a match: not repeated
    ]
    query = f"{ROLES}&_include=PractitionerRole:location&_include:iterate=Location:partof&_count=1"
    locations = _pages(store, env, service, "PractitionerRole", query)[0]
    assert _entries(locations)[1:] == [
        ("include", "Location/site0"),
        ("include", "Location/campus"),
        ("include", "Location/system"),
    ]
