"""Keyset paging under concurrent writes, and tamper-proof cursors — on both databases."""

from __future__ import annotations

import base64
import uuid

import orjson
import pytest

from openpayer.db import read_connection
from openpayer.fhir.errors import BadRequest
from openpayer.fhir.search.compartment import PatientCompartment


def _token(link: str | None) -> str:
    assert link is not None
    return link.split("_page_token=")[1]


def _names(result) -> list[str]:
    return [e.id for e in result.matches]


def _basic(i: int, tag: str) -> dict:
    return {
        "resourceType": "Basic",
        "id": f"b{i:03d}",
        "code": {"coding": [{"system": "urn:t", "code": tag}]},
    }


def test_paging_through_120_results_with_writes_in_between(store) -> None:
    env = f"page-{uuid.uuid4().hex[:8]}"
    store.put([_basic(i, "x") for i in range(120)], env=env)
    result = store.search("Basic", "code=urn:t|x&_count=25", env=env)
    assert result.total == 120
    seen = _names(result)
    pages = 1
    while (link := result.link("next")) is not None:
        if pages == 1:
            # writes between pages: an update of a row already seen and one not yet seen, a delete of an
            # unseen row, a new matching row and a new non-matching row
            store.put([_basic(3, "x"), _basic(80, "x"), _basic(500, "x"), _basic(501, "y")], env=env)
            store.delete("Basic", "b090", env=env)
        assert link.startswith("http://testserver/fhir/Basic?_page_token=")
        result = store.search("Basic", [], env=env, page_token=_token(link))
        seen += _names(result)
        pages += 1
    expected = [f"b{i:03d}" for i in range(120) if i != 90] + ["b500"]
    assert seen == expected  # nothing skipped, nothing repeated, in a stable order
    assert pages == 5
    assert result.total == 120  # 120 - 1 deleted + 1 created


def test_later_pages_carry_the_first_count_unless_accurate_is_asked(store) -> None:
    env = f"page-{uuid.uuid4().hex[:8]}"
    store.put([_basic(i, "x") for i in range(10)], env=env)
    default = store.search("Basic", "code=urn:t|x&_count=4", env=env)
    accurate = store.search("Basic", "code=urn:t|x&_count=4&_total=accurate", env=env)
    assert default.total == accurate.total == 10
    store.put([_basic(100 + i, "x") for i in range(3)], env=env)  # written after the first pages
    carried = store.search("Basic", [], env=env, page_token=_token(default.link("next")))
    recounted = store.search("Basic", [], env=env, page_token=_token(accurate.link("next")))
    assert carried.total == 10  # the first page's count, with no second COUNT
    assert recounted.total == 13
    fresh = store.search("Basic", "code=urn:t|x&_count=4", env=env)
    assert fresh.total == 13
    none = store.search("Basic", "code=urn:t|x&_count=4&_total=none", env=env)
    assert none.total is None
    assert store.search("Basic", [], env=env, page_token=_token(none.link("next"))).total is None


def test_previous_links_walk_back(store) -> None:
    env = f"page-{uuid.uuid4().hex[:8]}"
    store.put([_basic(i, "x") for i in range(10)], env=env)
    pages = [store.search("Basic", "_count=4", env=env)]
    while (link := pages[-1].link("next")) is not None:
        pages.append(store.search("Basic", [], env=env, page_token=_token(link)))
    assert [_names(p) for p in pages] == [
        ["b000", "b001", "b002", "b003"],
        ["b004", "b005", "b006", "b007"],
        ["b008", "b009"],
    ]
    back = store.search("Basic", [], env=env, page_token=_token(pages[-1].link("previous")))
    assert _names(back) == ["b004", "b005", "b006", "b007"]
    back = store.search("Basic", [], env=env, page_token=_token(back.link("previous")))
    assert _names(back) == ["b000", "b001", "b002", "b003"]
    assert back.link("previous") is None
    assert back.link("first") == "http://testserver/fhir/Basic?_count=4"


def _tamper(token: str, **changes) -> str:
    body, mac = token.split(".")
    payload = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    forged = (
        base64.urlsafe_b64encode(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).rstrip(b"=").decode()
    )
    return f"{forged}.{mac}"


def test_tampered_and_foreign_tokens_are_rejected(store) -> None:
    first = store.search("Observation", "status=final&_count=1")
    token = _token(first.link("next"))
    assert store.search("Observation", [], page_token=token).matches  # the genuine one works
    # a widened query, a flipped character, garbage
    for bad in (
        _tamper(token, q=[["_count", "1"]]),
        token[:-2] + ("AA" if token[-2:] != "AA" else "BB"),
        "x.y",
        "",
    ):
        if not bad:
            continue
        with pytest.raises(BadRequest):
            store.search("Observation", [], page_token=bad)
    # a genuine token replayed elsewhere: another type, another env, other parameters, another restriction
    with pytest.raises(BadRequest):
        store.search("Patient", [], page_token=token)
    with pytest.raises(BadRequest):
        store.search("Observation", [], env="other", page_token=token)
    with pytest.raises(BadRequest):
        store.search("Observation", [("status", "cancelled")], page_token=token)
    with pytest.raises(BadRequest):
        store.search("Observation", [], page_token=token, restriction=PatientCompartment("p1", env="conf"))
    mine = store.search("RiskAssessment", "_count=1", restriction=PatientCompartment("p2", env="conf"))
    with pytest.raises(BadRequest):
        store.search(
            "RiskAssessment",
            [],
            page_token=_token(mine.link("next")),
            restriction=PatientCompartment("p1", env="conf"),
        )
    with pytest.raises(BadRequest):
        store.search("Observation", [], page_token=token, allowed_types={"Observation"})


def test_token_with_repeated_query_is_accepted(store) -> None:
    first = store.search("Observation", "status=final&_count=1")
    token = _token(first.link("next"))
    again = store.search("Observation", [("status", "final"), ("_count", "1")], page_token=token)
    assert [e.id for e in again.matches] != [e.id for e in first.matches]


def test_token_signed_with_another_secret(store) -> None:
    from openpayer.fhir.paging import CursorSigner
    from openpayer.fhir.search.service import SearchService

    other = SearchService(store.service.registry, CursorSigner("another-secret"))
    with read_connection(store.engine) as conn:
        result = other.search(
            conn, "conf", "Observation", [("_count", "1")], base_url="http://testserver/fhir"
        )
    with pytest.raises(BadRequest):
        store.search("Observation", [], page_token=_token(result.link("next")))
