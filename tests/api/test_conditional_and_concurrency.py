"""Conditional create/update/delete (FHIR R4 §3.1.0.8), conditional references, and concurrent writes."""

from __future__ import annotations

import threading
from typing import Any

import orjson
from fastapi.testclient import TestClient

FHIR = "/sandbox/fhir"
JSON = {"Content-Type": "application/fhir+json"}


def member(value: str, **extra: Any) -> dict[str, Any]:
    body = {
        "resourceType": "Patient",
        "identifier": [{"system": "http://example.org/member", "value": value}],
        "name": [{"family": "Doe"}],
    }
    body.update(extra)
    return body


def test_conditional_create(client: TestClient) -> None:
    headers = {**JSON, "If-None-Exist": "identifier=http://example.org/member|M-9"}
    first = client.post(f"{FHIR}/Patient", json=member("M-9"), headers=headers)
    assert first.status_code == 201
    second = client.post(f"{FHIR}/Patient", json=member("M-9"), headers=headers)
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    client.post(f"{FHIR}/Patient", json=member("M-9"), headers=JSON)
    third = client.post(f"{FHIR}/Patient", json=member("M-9"), headers=headers)
    assert third.status_code == 412


def test_conditional_update(client: TestClient) -> None:
    url = f"{FHIR}/Patient?identifier=http://example.org/member|M-7"
    created = client.put(url, json=member("M-7"), headers=JSON)
    assert created.status_code == 201
    rid = created.json()["id"]
    updated = client.put(url, json=member("M-7", gender="female"), headers=JSON)
    assert updated.status_code == 200
    assert updated.json()["id"] == rid
    assert updated.json()["meta"]["versionId"] == "2"
    wrong_id = client.put(url, json=member("M-7", id="other"), headers=JSON)
    assert wrong_id.status_code == 400
    client.post(f"{FHIR}/Patient", json=member("M-7"), headers=JSON)
    assert client.put(url, json=member("M-7"), headers=JSON).status_code == 412


def test_conditional_delete(client: TestClient) -> None:
    created = client.post(f"{FHIR}/Patient", json=member("M-5"), headers=JSON).json()
    none = client.delete(f"{FHIR}/Patient?identifier=http://example.org/member|nobody")
    assert none.status_code == 200
    assert client.delete(f"{FHIR}/Patient?identifier=http://example.org/member|M-5").status_code == 204
    assert client.get(f"{FHIR}/Patient/{created['id']}").status_code == 410
    client.post(f"{FHIR}/Patient", json=member("M-4"), headers=JSON)
    client.post(f"{FHIR}/Patient", json=member("M-4"), headers=JSON)
    assert client.delete(f"{FHIR}/Patient?identifier=http://example.org/member|M-4").status_code == 412
    assert client.delete(f"{FHIR}/Patient").status_code == 400


def test_transaction_resolves_conditional_references(client: TestClient) -> None:
    target = client.post(f"{FHIR}/Patient", json=member("M-3"), headers=JSON).json()
    coverage = {
        "resourceType": "Coverage",
        "status": "active",
        "beneficiary": {"reference": "Patient?identifier=http://example.org/member|M-3"},
        "payor": [{"display": "Acme"}],
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": coverage, "request": {"method": "POST", "url": "Coverage"}}],
    }
    response = client.post(FHIR, json=bundle, headers=JSON)
    assert response.status_code == 200, response.text
    location = response.json()["entry"][0]["response"]["location"].rsplit("/_history", 1)[0]
    stored = client.get(f"{FHIR}/{location}").json()
    assert stored["beneficiary"]["reference"] == f"Patient/{target['id']}"
    missing = dict(coverage, beneficiary={"reference": "Patient?identifier=http://example.org/member|none"})
    bundle["entry"][0]["resource"] = missing
    assert client.post(FHIR, json=bundle, headers=JSON).status_code == 412


def test_transaction_conditional_create_with_if_none_exist(client: TestClient) -> None:
    existing = client.post(f"{FHIR}/Patient", json=member("M-2"), headers=JSON).json()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0b1a2c3d-0000-4000-8000-000000000001",
                "resource": member("M-2"),
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": "identifier=http://example.org/member|M-2",
                },
            },
            {
                "resource": {
                    "resourceType": "Coverage",
                    "status": "active",
                    "beneficiary": {"reference": "urn:uuid:0b1a2c3d-0000-4000-8000-000000000001"},
                    "payor": [{"display": "Acme"}],
                },
                "request": {"method": "POST", "url": "Coverage"},
            },
        ],
    }
    result = client.post(FHIR, json=bundle, headers=JSON).json()
    assert result["entry"][0]["response"]["status"] == "200 OK"
    location = result["entry"][1]["response"]["location"].rsplit("/_history", 1)[0]
    assert client.get(f"{FHIR}/{location}").json()["beneficiary"]["reference"] == f"Patient/{existing['id']}"


def test_concurrent_if_match_updates_never_lose_a_write(client: TestClient) -> None:
    """Writers race with If-Match: exactly one wins per version, and every accepted write is in history."""
    created = client.post(f"{FHIR}/Patient", json=member("C-1"), headers=JSON).json()
    url = f"{FHIR}/Patient/{created['id']}"
    accepted: list[int] = []
    lock = threading.Lock()

    def writer(index: int) -> None:
        for _ in range(6):
            current = client.get(url)
            version = current.headers["etag"]
            body = dict(current.json(), name=[{"family": f"Writer{index}"}])
            response = client.put(url, content=orjson.dumps(body), headers={**JSON, "If-Match": version})
            assert response.status_code in (200, 412), response.text
            if response.status_code == 200:
                with lock:
                    accepted.append(int(response.json()["meta"]["versionId"]))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = client.get(url).json()
    assert sorted(accepted) == list(range(2, int(final["meta"]["versionId"]) + 1))
    history = client.get(f"{url}/_history", params={"_count": 100}).json()
    assert len(history["entry"]) == len(accepted) + 1


def test_concurrent_creates_of_the_same_id_leave_one_resource(client: TestClient) -> None:
    statuses: list[int] = []

    def put() -> None:
        response = client.put(f"{FHIR}/Patient/race", json=member("R-1", id="race"), headers=JSON)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=put) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 5 + [201]
    history = client.get(f"{FHIR}/Patient/race/_history").json()
    assert sorted(int(e["resource"]["meta"]["versionId"]) for e in history["entry"]) == [1, 2, 3, 4, 5, 6]


# ---- If-Match on conditional update, and conditional writes racing (issue 13) ---------------------------
def test_conditional_update_honours_if_match(client: TestClient) -> None:
    url = f"{FHIR}/Patient?identifier=http://example.org/member|IM-1"
    assert client.put(url, json=member("IM-1"), headers={**JSON, "If-Match": 'W/"1"'}).status_code == 412
    created = client.put(url, json=member("IM-1"), headers=JSON)
    assert created.status_code == 201
    stale = client.put(url, json=member("IM-1", gender="male"), headers={**JSON, "If-Match": 'W/"7"'})
    assert stale.status_code == 412
    fresh = client.put(url, json=member("IM-1", gender="female"), headers={**JSON, "If-Match": 'W/"1"'})
    assert fresh.status_code == 200
    assert fresh.json()["meta"]["versionId"] == "2"
    again = client.put(url, json=member("IM-1", gender="other"), headers={**JSON, "If-Match": 'W/"1"'})
    assert again.status_code == 412


def test_conditional_update_in_a_bundle_honours_request_if_match(client: TestClient) -> None:
    query = "Patient?identifier=http://example.org/member|IM-2"
    client.put(f"{FHIR}/{query}", json=member("IM-2"), headers=JSON)

    def bundle(kind: str, etag: str) -> dict[str, Any]:
        entry = {"resource": member("IM-2", gender="female"), "request": {"method": "PUT", "url": query}}
        entry["request"]["ifMatch"] = etag
        return {"resourceType": "Bundle", "type": kind, "entry": [entry]}

    assert client.post(FHIR, json=bundle("transaction", 'W/"5"'), headers=JSON).status_code == 412
    batch = client.post(FHIR, json=bundle("batch", 'W/"5"'), headers=JSON).json()
    assert batch["entry"][0]["response"]["status"].startswith("412")
    done = client.post(FHIR, json=bundle("transaction", 'W/"1"'), headers=JSON)
    assert done.status_code == 200
    assert done.json()["entry"][0]["response"]["etag"] == 'W/"2"'


def race(count: int, request: Any) -> list[Any]:
    """`count` threads sending at once (released together by a barrier); their responses."""
    barrier = threading.Barrier(count)
    responses: list[Any] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        responses[index] = request(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def test_concurrent_conditional_creates_make_one_resource(client: TestClient) -> None:
    headers = {**JSON, "If-None-Exist": "identifier=http://example.org/member|RACE-1"}
    responses = race(20, lambda i: client.post(f"{FHIR}/Patient", json=member("RACE-1"), headers=headers))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201], [r.text for r in responses if r.status_code >= 300]
    assert len({r.json()["id"] for r in responses}) == 1
    found = client.get(f"{FHIR}/Patient", params={"identifier": "http://example.org/member|RACE-1"}).json()
    assert found["total"] == 1


def test_concurrent_conditional_updates_of_a_new_identifier_make_one_resource(client: TestClient) -> None:
    url = f"{FHIR}/Patient?identifier=http://example.org/member|RACE-2"
    responses = race(20, lambda i: client.put(url, json=member("RACE-2", gender="male"), headers=JSON))
    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    found = client.get(url.replace("Patient?", "Patient?_total=accurate&")).json()
    assert found["total"] == 1
    rid = found["entry"][0]["resource"]["id"]
    history = client.get(f"{FHIR}/Patient/{rid}/_history", params={"_count": 100}).json()
    assert len(history["entry"]) == 20  # every accepted write is a version: none was lost


def test_concurrent_conditional_updates_with_one_etag_have_one_winner(client: TestClient) -> None:
    url = f"{FHIR}/Patient?identifier=http://example.org/member|RACE-3"
    created = client.put(url, json=member("RACE-3"), headers=JSON)
    etag = created.headers["etag"]

    def update(index: int) -> Any:
        body = member("RACE-3", name=[{"family": f"Writer{index}"}])
        return client.put(url, json=body, headers={**JSON, "If-Match": etag})

    responses = race(20, update)
    assert sorted(r.status_code for r in responses) == [200] + [412] * 19
    winner = next(r for r in responses if r.status_code == 200).json()
    rid = created.json()["id"]
    current = client.get(f"{FHIR}/Patient/{rid}").json()
    assert current["name"] == winner["name"]
    assert current["meta"]["versionId"] == "2"
    history = client.get(f"{FHIR}/Patient/{rid}/_history").json()
    assert sorted(e["resource"]["meta"]["versionId"] for e in history["entry"]) == ["1", "2"]
