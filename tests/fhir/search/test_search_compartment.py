"""Patient compartment: the restriction in every branch, compartment search and $everything."""

from __future__ import annotations

import pytest

from openpayer.db import read_connection
from openpayer.fhir.errors import BadRequest, NotFound
from openpayer.fhir.search.compartment import PatientCompartment

BASE = "http://testserver/fhir"


def p(patient_id: str) -> PatientCompartment:
    return PatientCompartment(patient_id, env="conf")


@pytest.mark.parametrize(
    ("rtype", "query", "unrestricted", "restricted"),
    [
        # matches and totals
        ("Observation", "", {f"Observation/o{i}" for i in range(1, 9)}, {"Observation/o1"}),
        ("Patient", "", {"Patient/p1", "Patient/p2", "Patient/p3", "Patient/p4"}, {"Patient/p1"}),
        (
            "RiskAssessment",
            "probability=gt0",
            {f"RiskAssessment/ra{i}" for i in range(1, 6)},
            {"RiskAssessment/ra1", "RiskAssessment/ra2", "RiskAssessment/ra3"},
        ),
        # non-patient types listed as extras stay readable
        (
            "Practitioner",
            "",
            {"Practitioner/pr1", "Practitioner/pr2"},
            {"Practitioner/pr1", "Practitioner/pr2"},
        ),
        # not an extra type and not in the compartment
        ("Group", "", {"Group/g1"}, set()),
        # chains: the chained target must satisfy the restriction too (o2 belongs to p2)
        ("Observation", "has-member.code=29463-7", {"Observation/o1"}, set()),
        (
            "Observation",
            "subject:Patient.name=chalmers",
            {"Observation/o1", "Observation/o3"},
            {"Observation/o1"},
        ),
        # _has: only p1's observations may vouch for a practitioner
        (
            "Practitioner",
            "_has:Observation:performer:status=final",
            {"Practitioner/pr1", "Practitioner/pr2"},
            {"Practitioner/pr1"},
        ),
        ("Patient", "_has:Observation:subject:code=29463-7", {"Patient/p2"}, set()),
    ],
)
def test_restriction_on_matches_chains_has_and_totals(store, rtype, query, unrestricted, restricted) -> None:
    result = store.search(rtype, query)
    assert store.ids(result) == unrestricted
    assert result.total == len(unrestricted)
    result = store.search(rtype, query, restriction=p("p1"))
    assert store.ids(result) == restricted
    assert result.total == len(restricted)
    counted = store.search(rtype, query + "&_summary=count", restriction=p("p1"))
    assert counted.total == len(restricted)


@pytest.mark.parametrize(
    ("rtype", "query", "unrestricted", "restricted"),
    [
        ("Observation", "_id=o1&_include=Observation:has-member", {"Observation/o2"}, set()),
        (
            "Practitioner",
            "_id=pr1&_revinclude=Observation:performer",
            {"Observation/o1", "Observation/o4"},
            {"Observation/o1"},
        ),
        ("Organization", "_id=org2&_revinclude=Patient:organization", {"Patient/p2"}, set()),
        (
            "Observation",
            "_id=o1&_include=*",
            {"Observation/o2", "Patient/p1", "Practitioner/pr1"},
            {"Patient/p1", "Practitioner/pr1"},
        ),
    ],
)
def test_restriction_on_includes_and_revincludes(store, rtype, query, unrestricted, restricted) -> None:
    assert store.included(store.search(rtype, query)) == unrestricted
    assert store.included(store.search(rtype, query, restriction=p("p1"))) == restricted


def test_allowed_types_apply_to_matches_and_includes(store) -> None:
    result = store.search("Observation", "_id=o1&_include=*", allowed_types={"Observation", "Patient"})
    assert store.included(result) == {"Observation/o2", "Patient/p1"}
    with pytest.raises(BadRequest):
        store.search("Practitioner", "", allowed_types={"Observation"})
    system = store.search(None, "_id=p1,pr1,o1", allowed_types={"Patient"})
    assert store.ids(system) == {"Patient/p1"}


def test_compartment_search(store) -> None:
    with read_connection(store.engine) as conn:
        svc = store.service
        result = svc.search_compartment(conn, "conf", "Patient", "p1", "Observation", [], base_url=BASE)
        assert store.ids(result) == {"Observation/o1"}
        assert result.link("self") == f"{BASE}/Patient/p1/Observation"
        result = svc.search_compartment(
            conn, "conf", "Patient", "p2", "Observation", [("code", "29463-7")], base_url=BASE
        )
        # o5 refers to p2 by an absolute URL on our base: in the compartment all the same
        assert store.ids(result) == {"Observation/o2", "Observation/o5"}
        result = svc.search_compartment(
            conn, "conf", "Patient", "p1", "RiskAssessment", [("_count", "2")], base_url=BASE
        )
        assert result.total == 3
        assert len(result.matches) == 2
        token = result.link("next").split("_page_token=")[1]  # type: ignore[union-attr]
        more = svc.search_compartment(
            conn, "conf", "Patient", "p1", "RiskAssessment", [], base_url=BASE, page_token=token
        )
        assert len(more.matches) == 1
        with pytest.raises(BadRequest):  # the cursor is bound to the compartment
            svc.search_compartment(
                conn, "conf", "Patient", "p2", "RiskAssessment", [], base_url=BASE, page_token=token
            )
        with pytest.raises(BadRequest):
            svc.search_compartment(conn, "conf", "Patient", "p1", "Organization", [], base_url=BASE)
        # a compartment search under a SMART restriction for another patient finds nothing
        result = svc.search_compartment(
            conn, "conf", "Patient", "p1", "Observation", [], base_url=BASE, restriction=p("p2")
        )
        assert result.matches == []
        assert result.total == 0


def test_everything(store) -> None:
    with read_connection(store.engine) as conn:
        svc = store.service
        result = svc.everything(conn, "conf", "p1", [], base_url=BASE)
        assert store.ids(result) == {
            "Patient/p1",
            "Observation/o1",
            "RiskAssessment/ra1",
            "RiskAssessment/ra2",
            "RiskAssessment/ra3",
            "Practitioner/pr1",
            "Organization/org1",
        }
        assert result.total == 7
        only = svc.everything(conn, "conf", "p1", [("_type", "Observation,Practitioner")], base_url=BASE)
        assert store.ids(only) == {"Observation/o1", "Practitioner/pr1"}
        none = svc.everything(conn, "conf", "p1", [("_since", "2999-01-01")], base_url=BASE)
        assert none.total == 0
        paged = svc.everything(conn, "conf", "p1", [("_count", "3")], base_url=BASE)
        seen = [e.id for e in paged.matches]
        while (link := paged.link("next")) is not None:
            assert link.startswith(f"{BASE}/Patient/p1/$everything?_page_token=")
            paged = svc.everything(conn, "conf", "p1", [], base_url=BASE, page_token=link.split("=", 1)[1])
            seen += [e.id for e in paged.matches]
        assert len(seen) == 7
        assert len(set(seen)) == 7
        p2 = svc.everything(conn, "conf", "p2", [], base_url=BASE)
        assert "Observation/o5" in store.ids(p2)  # refers to p2 by an absolute URL on our base
        assert "Organization/org2" in store.ids(p2)
        assert "Organization/org1" not in store.ids(p2)
        assert "Observation/o1" not in store.ids(p2)
        with pytest.raises(NotFound):
            svc.everything(conn, "conf", "nobody", [], base_url=BASE)
        with pytest.raises(NotFound):  # p1's $everything under p2's restriction
            svc.everything(conn, "conf", "p1", [], base_url=BASE, restriction=p("p2"))
        lenient = svc.everything(conn, "conf", "p1", [("code", "x")], base_url=BASE)
        assert lenient.issues
        assert lenient.total == 7


def test_patient_compartment_rejects_compartment_types_as_extras() -> None:
    with pytest.raises(ValueError, match="Observation"):
        PatientCompartment("p1", env="conf", extra_types=("Observation",))
    assert PatientCompartment("p1", env="conf").key != PatientCompartment("p2", env="conf").key
