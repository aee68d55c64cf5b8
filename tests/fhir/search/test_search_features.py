"""Sorting, includes, strict/lenient handling, summaries, bundles, conditional matching: both databases."""

from __future__ import annotations

from datetime import datetime

import orjson
import pytest

from openpayer.db import read_connection
from openpayer.fhir.errors import BadRequest
from openpayer.fhir.search.bundle import render_searchset
from openpayer.fhir.search.service import SearchService


def order(result) -> list[str]:
    return [f"{e.resource_type}/{e.id}" for e in result.matches]


# ---- _sort ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("_sort=birthdate", ["p1", "p2", "p3", "p4"]),
        # descending sorts a range by its end: p2 (all of 1980) ends after p3 (1980-05-05)
        ("_sort=-birthdate", ["p4", "p2", "p3", "p1"]),
        ("_sort=family", ["p1", "p3", "p2", "p4"]),  # missing values last
        ("_sort=-family", ["p2", "p3", "p1", "p4"]),
        ("_sort=_id", ["p1", "p2", "p3", "p4"]),
        ("_sort=-_id", ["p4", "p3", "p2", "p1"]),
        ("_sort=gender,-birthdate", ["p2", "p1", "p3", "p4"]),
        ("", ["p1", "p2", "p3", "p4"]),  # default: insertion (rid) order
    ],
)
def test_sort(store, query: str, expected: list[str]) -> None:
    result = store.search("Patient", query)
    assert order(result) == [f"Patient/{i}" for i in expected]


def test_sort_by_last_updated_and_paging_through_sorted_results(store) -> None:
    result = store.search("Observation", "_sort=-_lastUpdated&_count=3")
    seen = order(result)
    while (link := result.link("next")) is not None:
        result = store.search("Observation", [], page_token=link.split("_page_token=")[1])
        seen += order(result)
    # Writes within the same millisecond share a lastUpdated; ties follow insertion (rid) order.
    stored = store.search("Observation", "_count=100").matches
    expected = sorted(
        range(len(stored)), key=lambda i: (-_micros(orjson.loads(stored[i].body)["meta"]["lastUpdated"]), i)
    )
    assert len(seen) == 8
    assert seen == [f"Observation/{stored[i].id}" for i in expected]


def _micros(instant: str) -> int:
    return int(datetime.fromisoformat(instant).timestamp() * 1_000_000)


def test_sorted_paging_forward_and_back(store) -> None:
    first = store.search("Patient", "_sort=-family&_count=2")
    assert order(first) == ["Patient/p2", "Patient/p3"]
    assert first.link("previous") is None
    second = store.search("Patient", [], page_token=_token(first.link("next")))
    assert order(second) == ["Patient/p1", "Patient/p4"]
    assert second.link("next") is None
    back = store.search("Patient", [], page_token=_token(second.link("previous")))
    assert order(back) == ["Patient/p2", "Patient/p3"]
    assert back.link("previous") is None
    assert back.link("next") is not None


def _token(link: str | None) -> str:
    assert link is not None
    return link.split("_page_token=")[1]


# ---- _include / _revinclude ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rtype", "query", "matches", "includes"),
    [
        ("Observation", "_id=o1&_include=Observation:subject", {"Observation/o1"}, {"Patient/p1"}),
        (
            "Observation",
            "_id=o1,o4&_include=Observation:subject:Group",
            {"Observation/o1", "Observation/o4"},
            {"Group/g1"},
        ),
        ("Patient", "_id=p1&_revinclude=Observation:subject", {"Patient/p1"}, {"Observation/o1"}),
        ("Patient", "_id=p1&_include=*", {"Patient/p1"}, {"Practitioner/pr1", "Organization/org1"}),
        # the target of o8's subject was deleted: simply not included
        ("Observation", "_id=o8&_include=Observation:subject", {"Observation/o8"}, set()),
        # o1 and o2 are matches: has-member (o1 -> o2) must not duplicate o2 as an include
        (
            "Observation",
            "_id=o1,o2&_include=Observation:has-member&_include=Observation:subject",
            {"Observation/o1", "Observation/o2"},
            {"Patient/p1", "Patient/p2"},
        ),
        # iterate: Observation -> Patient -> Organization -> parent Organization
        (
            "Observation",
            "_id=o2&_include=Observation:subject&_include:iterate=Patient:organization"
            "&_include:iterate=Organization:partof",
            {"Observation/o2"},
            {"Patient/p2", "Organization/org2", "Organization/org1"},
        ),
        # without :iterate the Patient's organization is not followed
        (
            "Observation",
            "_id=o2&_include=Observation:subject&_include=Patient:organization",
            {"Observation/o2"},
            {"Patient/p2"},
        ),
        (
            "Practitioner",
            "_id=pr1&_revinclude=Observation:performer&_revinclude:iterate=Provenance:target",
            {"Practitioner/pr1"},
            {"Observation/o1", "Observation/o4", "Provenance/prov1"},
        ),
    ],
)
def test_includes(store, rtype, query, matches, includes) -> None:
    result = store.search(rtype, query, strict=True)
    assert store.ids(result) == matches
    assert store.included(result) == includes
    assert len(result.included) == len(includes)  # never duplicated
    assert result.total == len(matches)  # includes never count


def test_include_cap_reports_an_issue(store) -> None:
    capped = SearchService(store.service.registry, store.signer, include_cap=1)
    with read_connection(store.engine) as conn:
        result = capped.search(
            conn, "conf", "Patient", [("_id", "p1"), ("_include", "*")], base_url="http://testserver/fhir"
        )
    assert len(result.included) == 1
    assert any("capped at 1" in issue.diagnostics for issue in result.issues)


# ---- strict / lenient -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "foo=bar",
        "name:sounds-like=x",
        "_list=$current-allergies",
        "subject:Patient.shoe-size=9",
        "_has:Observation:subject:nope=1",
        "_sort=nope",
        "_include=Observation:nope",
        "gender:below=male",
        "_text=x",
    ],
)
def test_strict_rejects_and_lenient_reports(store, query: str) -> None:
    with pytest.raises(BadRequest) as caught:
        store.search(
            "Observation" if "subject" in query or "Observation" in query else "Patient",
            query + "&_id=p1",
            strict=True,
        )
    assert caught.value.issues
    assert all(i.code == "not-supported" for i in caught.value.issues)
    rtype = "Observation" if "subject" in query or "Observation" in query else "Patient"
    lenient = store.search(rtype, query + "&_id=p1")
    assert lenient.issues
    assert lenient.issues[0].severity == "warning"
    name = query.split("=")[0]
    assert name not in (lenient.link("self") or "")  # the self link shows what was applied
    body = orjson.loads(render_searchset(lenient))
    outcome = [e for e in body["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome
    assert outcome[0]["resource"]["resourceType"] == "OperationOutcome"


def test_strict_lists_every_problem(store) -> None:
    with pytest.raises(BadRequest) as caught:
        store.search("Patient", "foo=1&bar=2&name=x", strict=True)
    assert len(caught.value.issues) == 2


@pytest.mark.parametrize(
    "query",
    [
        "birthdate=1980-13",
        "birthdate=xx2000",
        "probability=abc",
        "_count=-1",
        "_count=x",
        "_summary=maybe",
        "gender:missing=maybe",
        "near=1|2|3|furlongs",
        "code-value-quantity=8867-4",
        "_total=most",
    ],
)
def test_malformed_values_are_errors_even_when_lenient(store, query: str) -> None:
    rtype = {"probability": "RiskAssessment", "near": "Location", "code-value-quantity": "Observation"}.get(
        query.split("=")[0], "Patient"
    )
    with pytest.raises(BadRequest):
        store.search(rtype, query)


def test_value_set_that_cannot_be_enumerated(store) -> None:
    with pytest.raises(BadRequest, match="value set"):
        store.search("Observation", "code:in=http://example.org/unknown-vs")


# ---- totals, _count, _summary, _elements, bundle -----------------------------------------------------------


def test_count_zero_and_summary_count_give_only_a_total(store) -> None:
    for query in ("_count=0", "_summary=count"):
        result = store.search("Patient", query)
        assert result.matches == []
        assert result.total == 4
    assert store.search("Patient", "_total=none&_count=1").total is None
    assert store.search("Patient", "_count=1").total == 4
    assert store.search("Patient", "_total=accurate&gender=male").total == 1


def test_count_is_capped_at_the_maximum(store) -> None:
    result = store.search("Observation", "_count=100000")
    assert "_count=200" in (result.link("self") or "")


def test_summary_and_elements(store) -> None:
    full = orjson.loads(store.search("Patient", "_id=p1").matches[0].body)
    assert "generalPractitioner" in full
    summary = orjson.loads(store.search("Patient", "_id=p1&_summary=true").matches[0].body)
    assert "name" in summary
    assert "generalPractitioner" not in summary
    assert any(t.get("code") == "SUBSETTED" for t in summary["meta"]["tag"])
    elements = orjson.loads(store.search("Patient", "_id=p1&_elements=gender").matches[0].body)
    assert set(elements) == {"resourceType", "id", "meta", "gender"}
    data = orjson.loads(store.search("Patient", "_id=p1&_summary=data").matches[0].body)
    assert "text" not in data
    assert "generalPractitioner" in data


def test_render_searchset(store) -> None:
    result = store.search("Observation", "_id=o1&_include=Observation:subject")
    bundle = orjson.loads(render_searchset(result))
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "searchset"
    assert bundle["total"] == 1
    assert [e["search"]["mode"] for e in bundle["entry"]] == ["match", "include"]
    assert bundle["entry"][0]["fullUrl"] == "http://testserver/fhir/Observation/o1"
    assert bundle["entry"][1]["resource"]["id"] == "p1"
    assert bundle["link"][0] == {"relation": "self", "url": result.link("self")}
    assert result.link("self") == ("http://testserver/fhir/Observation?_id=o1&_include=Observation%3Asubject")
    empty = orjson.loads(render_searchset(store.search("Observation", "_id=nothing")))
    assert empty["total"] == 0
    assert "entry" not in empty


def test_system_search_links(store) -> None:
    result = store.search(None, "_type=Patient&_count=2")
    assert result.link("self") == "http://testserver/fhir?_type=Patient&_count=2"
    assert (result.link("next") or "").startswith("http://testserver/fhir?_page_token=")
    with pytest.raises(BadRequest):
        store.search("Patient", "_type=Patient", strict=True)


# ---- conditional interactions ----------------------------------------------------------------------


def test_match_ids(store) -> None:
    with read_connection(store.engine) as conn:
        svc = store.service
        assert svc.match_ids(conn, "conf", "Patient", [("identifier", "http://hospital.org/mrn|12345")]) == [
            "p1"
        ]
        assert len(svc.match_ids(conn, "conf", "Patient", [("birthdate", "ge1900")])) == 2
        assert svc.match_ids(conn, "conf", "Patient", [("family", "nobody")]) == []
        with pytest.raises(BadRequest):
            svc.match_ids(conn, "conf", "Patient", [("foo", "bar")])
        with pytest.raises(BadRequest):
            svc.match_ids(conn, "conf", "Patient", [])


@pytest.mark.parametrize(
    ("rtype", "query", "expected"),
    [
        ("Observation", "_id=o1,o2,o3,o4&_sort=value-quantity", ["o4", "o1", "o2", "o3"]),
        ("Observation", "_id=o1,o2,o3,o4&_sort=-value-quantity", ["o3", "o2", "o1", "o4"]),
        ("Observation", "_id=o1,o2,o3,o4,o6&_sort=subject", ["o4", "o1", "o2", "o3", "o6"]),
        ("Observation", "_id=o1,o2,o3&_sort=code,_id", ["o2", "o1", "o3"]),
        ("RiskAssessment", "_sort=-probability", ["ra3", "ra4", "ra1", "ra2", "ra5"]),
        ("ValueSet", "_sort=-url", ["vs3", "vs2", "vs1"]),
    ],
)
def test_sort_other_types(store, rtype: str, query: str, expected: list[str]) -> None:
    assert [e.id for e in store.search(rtype, query, strict=True).matches] == expected


def test_revinclude_star_and_type_star(store) -> None:
    result = store.search("Patient", "_id=p1&_revinclude=*")
    assert store.included(result) == {
        "Observation/o1",
        "RiskAssessment/ra1",
        "RiskAssessment/ra2",
        "RiskAssessment/ra3",
    }
    result = store.search("Observation", "_id=o1&_include=Observation:*")
    assert store.included(result) == {"Patient/p1", "Practitioner/pr1", "Observation/o2"}


def test_self_link_normalises_and_keeps_escapes(store) -> None:
    result = store.search("Patient", r"identifier=a\,b\|c&_count=5")
    assert store.ids(result) == {"Patient/p4"}
    assert result.link("self") == "http://testserver/fhir/Patient?identifier=a%5C%2Cb%5C%7Cc&_count=5"


# ---- _list ------------------------------------------------------------------------------------------------

LIST_ENV = "lists"  # an environment of its own, so the session's shared corpus stays as it is


def _list_world(store) -> None:
    if store.search("List", "_id=favourites", env=LIST_ENV).matches:
        return
    store.put(
        [
            {"resourceType": "Patient", "id": "p1", "gender": "male"},
            {"resourceType": "Patient", "id": "p2", "gender": "female"},
            {"resourceType": "Patient", "id": "p3", "gender": "female"},
            {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"}},
            {
                "resourceType": "List",
                "id": "favourites",
                "status": "current",
                "mode": "working",
                "entry": [
                    {"item": {"reference": "Patient/p1"}},
                    {"item": {"reference": "Patient/p3"}},
                    {"item": {"reference": "Observation/o1"}},
                ],
            },
            {
                "resourceType": "List",
                "id": "gone",
                "status": "current",
                "mode": "working",
                "entry": [{"item": {"reference": "Patient/p2"}}],
            },
        ],
        env=LIST_ENV,
    )
    store.delete("List", "gone", env=LIST_ENV)


def test_list_selects_the_items_of_that_list(store) -> None:
    _list_world(store)
    assert store.ids(store.search("Patient", "_list=favourites", env=LIST_ENV)) == {
        "Patient/p1",
        "Patient/p3",
    }
    assert store.ids(store.search("Observation", "_list=favourites", env=LIST_ENV)) == {"Observation/o1"}
    both = store.search("Patient", "_list=favourites&gender=female", env=LIST_ENV)
    assert store.ids(both) == {"Patient/p3"}
    either = store.search("Patient", "_list=favourites,gone", env=LIST_ENV)
    assert store.ids(either) == {"Patient/p1", "Patient/p3"}  # a deleted list has no items
    assert store.search("Patient", "_list=nope", env=LIST_ENV).matches == []
    assert store.search("Patient", "_list=favourites").matches == []  # another environment's list


def test_functional_lists_are_reported_as_unsupported(store) -> None:
    _list_world(store)
    lenient = store.search("Patient", "_list=$current-allergies", env=LIST_ENV)
    assert any("$current-allergies" in issue.diagnostics for issue in lenient.issues)
    with pytest.raises(BadRequest):
        store.search("Patient", "_list=$current-allergies", env=LIST_ENV, strict=True)


def test_list_under_a_patient_restriction_needs_a_list_the_patient_may_read(store) -> None:
    from openpayer.fhir.search.compartment import PatientCompartment

    _list_world(store)
    p1 = PatientCompartment("p1", env=LIST_ENV)
    # The list has no subject: it is in nobody's compartment, so it selects nothing for p1's token.
    assert store.search("Patient", "_list=favourites", env=LIST_ENV, restriction=p1).matches == []
    store.put(
        [
            {
                "resourceType": "List",
                "id": "mine",
                "status": "current",
                "mode": "working",
                "subject": {"reference": "Patient/p1"},
                "entry": [{"item": {"reference": "Patient/p1"}}, {"item": {"reference": "Patient/p3"}}],
            }
        ],
        env=LIST_ENV,
    )
    # p1's own list selects p1; p3 is listed but outside p1's compartment.
    assert store.ids(store.search("Patient", "_list=mine", env=LIST_ENV, restriction=p1)) == {"Patient/p1"}
