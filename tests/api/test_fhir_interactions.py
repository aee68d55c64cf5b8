"""The FHIR RESTful interactions over HTTP, status code by status code (FHIR R4 §3.1.0)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

FHIR = "/sandbox/fhir"
JSON = {"Content-Type": "application/fhir+json"}


def patient(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": "http://example.org/member", "value": "M-1"}],
        "name": [{"family": "Chalmers", "given": ["Peter", "James"]}],
        "gender": "male",
        "birthDate": "1974-12-25",
    }
    body.update(extra)
    return body


def create(client: TestClient, resource: dict[str, Any], base: str = FHIR) -> dict[str, Any]:
    response = client.post(f"{base}/{resource['resourceType']}", json=resource, headers=JSON)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


# ---- create / read / vread ------------------------------------------------------------------------
def test_create_assigns_id_and_version_and_returns_location(client: TestClient) -> None:
    response = client.post(f"{FHIR}/Patient", json=patient(id="ignored"), headers=JSON)
    assert response.status_code == 201
    body = response.json()
    assert body["id"] != "ignored"
    assert body["meta"]["versionId"] == "1"
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["location"] == f"http://testserver{FHIR}/Patient/{body['id']}/_history/1"
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert "last-modified" in response.headers


def test_read_returns_stored_resource_with_headers(client: TestClient) -> None:
    created = create(client, patient())
    response = client.get(f"{FHIR}/Patient/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["content-location"].endswith(f"/Patient/{created['id']}/_history/1")


def test_read_unknown_id_is_404_operation_outcome(client: TestClient) -> None:
    response = client.get(f"{FHIR}/Patient/nope")
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.json()["issue"][0]["code"] == "not-found"


def test_unknown_resource_type_is_404(client: TestClient) -> None:
    response = client.get(f"{FHIR}/Patientz/1")
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"


def test_vread_and_old_versions(client: TestClient) -> None:
    created = create(client, patient())
    rid = created["id"]
    updated = dict(created, gender="female")
    assert client.put(f"{FHIR}/Patient/{rid}", json=updated, headers=JSON).status_code == 200
    v1 = client.get(f"{FHIR}/Patient/{rid}/_history/1")
    v2 = client.get(f"{FHIR}/Patient/{rid}/_history/2")
    assert v1.json()["gender"] == "male"
    assert v2.json()["gender"] == "female"
    assert v2.headers["etag"] == 'W/"2"'
    assert client.get(f"{FHIR}/Patient/{rid}/_history/3").status_code == 404
    assert client.get(f"{FHIR}/Patient/{rid}/_history/abc").status_code == 404


def test_head_read_has_headers_without_body(client: TestClient) -> None:
    created = create(client, patient())
    response = client.head(f"{FHIR}/Patient/{created['id']}")
    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"1"'
    assert response.content == b""


# ---- update ---------------------------------------------------------------------------------------
def test_update_as_create_with_client_id(client: TestClient) -> None:
    response = client.put(f"{FHIR}/Patient/client-chosen", json=patient(id="client-chosen"), headers=JSON)
    assert response.status_code == 201
    assert response.headers["location"].endswith("/Patient/client-chosen/_history/1")
    again = client.put(f"{FHIR}/Patient/client-chosen", json=patient(id="client-chosen"), headers=JSON)
    assert again.status_code == 200
    assert again.json()["meta"]["versionId"] == "2"


def test_update_id_mismatch_and_missing_id_are_400(client: TestClient) -> None:
    assert client.put(f"{FHIR}/Patient/a", json=patient(id="b"), headers=JSON).status_code == 400
    assert client.put(f"{FHIR}/Patient/a", json=patient(), headers=JSON).status_code == 400
    assert (
        client.put(
            f"{FHIR}/Patient/a", json={"resourceType": "Observation", "id": "a"}, headers=JSON
        ).status_code
        == 400
    )


def test_if_match_version_conflict_is_412(client: TestClient) -> None:
    created = create(client, patient())
    url = f"{FHIR}/Patient/{created['id']}"
    ok = client.put(url, json=created, headers={**JSON, "If-Match": 'W/"1"'})
    assert ok.status_code == 200
    stale = client.put(url, json=created, headers={**JSON, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    assert client.get(url).json()["meta"]["versionId"] == "2"
    bad = client.put(url, json=created, headers={**JSON, "If-Match": "garbage"})
    assert bad.status_code == 400


def test_if_none_match_and_if_modified_since_give_304(client: TestClient) -> None:
    created = create(client, patient())
    url = f"{FHIR}/Patient/{created['id']}"
    first = client.get(url)
    assert client.get(url, headers={"If-None-Match": 'W/"1"'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": 'W/"7"'}).status_code == 200
    assert client.get(url, headers={"If-Modified-Since": first.headers["last-modified"]}).status_code == 304
    assert client.get(url, headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code == 200


# ---- Prefer, formats, subsetting --------------------------------------------------------------
def test_prefer_return_minimal_and_operation_outcome(client: TestClient) -> None:
    minimal = client.post(f"{FHIR}/Patient", json=patient(), headers={**JSON, "Prefer": "return=minimal"})
    assert minimal.status_code == 201
    assert minimal.content == b""
    assert "location" in minimal.headers
    outcome = client.post(
        f"{FHIR}/Patient", json=patient(), headers={**JSON, "Prefer": "return=OperationOutcome"}
    )
    assert outcome.status_code == 201
    assert outcome.json()["resourceType"] == "OperationOutcome"


def test_xml_is_refused_with_406_and_415(client: TestClient) -> None:
    created = create(client, patient())
    url = f"{FHIR}/Patient/{created['id']}"
    assert client.get(url, headers={"Accept": "application/fhir+xml"}).status_code == 406
    assert client.get(url, params={"_format": "xml"}).status_code == 406
    assert client.get(url, params={"_format": "json"}).status_code == 200
    assert (
        client.get(url, headers={"Accept": "application/fhir+xml, application/json;q=0.5"}).status_code == 200
    )
    xml = client.post(
        f"{FHIR}/Patient", content=b"<Patient/>", headers={"Content-Type": "application/fhir+xml"}
    )
    assert xml.status_code == 415
    assert xml.json()["resourceType"] == "OperationOutcome"


def test_pretty_summary_and_elements(client: TestClient) -> None:
    created = create(
        client,
        patient(text={"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}),
    )
    url = f"{FHIR}/Patient/{created['id']}"
    pretty = client.get(url, params={"_pretty": "true"})
    assert b"\n  " in pretty.content
    summary = client.get(url, params={"_summary": "true"}).json()
    assert "text" not in summary
    assert summary["name"] == created["name"]
    assert any(tag["code"] == "SUBSETTED" for tag in summary["meta"]["tag"])
    data = client.get(url, params={"_summary": "data"}).json()
    assert "text" not in data
    assert "gender" in data
    elements = client.get(url, params={"_elements": "gender"}).json()
    assert set(elements) == {"resourceType", "id", "meta", "gender"}
    assert client.get(url, params={"_summary": "bogus"}).status_code == 400


# ---- patch / delete ---------------------------------------------------------------------------
def test_json_patch(client: TestClient) -> None:
    created = create(client, patient())
    url = f"{FHIR}/Patient/{created['id']}"
    ops = [{"op": "replace", "path": "/gender", "value": "female"}]
    response = client.patch(
        url, content=orjson.dumps(ops), headers={"Content-Type": "application/json-patch+json"}
    )
    assert response.status_code == 200
    assert response.json()["gender"] == "female"
    assert response.json()["meta"]["versionId"] == "2"
    invalid = [{"op": "replace", "path": "/gender", "value": "robot"}]
    bad = client.patch(
        url, content=orjson.dumps(invalid), headers={"Content-Type": "application/json-patch+json"}
    )
    assert bad.status_code == 400
    assert client.get(url).json()["gender"] == "female"
    broken = [{"op": "remove", "path": "/nothing/here"}]
    assert (
        client.patch(
            url, content=orjson.dumps(broken), headers={"Content-Type": "application/json-patch+json"}
        ).status_code
        == 422
    )
    assert client.patch(url, content=orjson.dumps(ops), headers=JSON).status_code == 415


def test_delete_is_soft_and_kept_in_history(client: TestClient) -> None:
    created = create(client, patient())
    url = f"{FHIR}/Patient/{created['id']}"
    assert client.delete(url).status_code == 204
    gone = client.get(url)
    assert gone.status_code == 410
    assert gone.json()["issue"][0]["code"] == "deleted"
    assert client.get(f"{url}/_history/1").status_code == 200
    assert client.get(f"{url}/_history/2").status_code == 410
    assert client.delete(url).status_code == 204  # idempotent
    history = client.get(f"{url}/_history").json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
    assert "resource" not in history["entry"][0]
    recreated = client.put(url, json=created, headers=JSON)
    assert recreated.status_code == 201
    assert recreated.json()["meta"]["versionId"] == "3"


def test_delete_unknown_is_204(client: TestClient) -> None:
    assert client.delete(f"{FHIR}/Patient/never-was").status_code == 204


# ---- history ------------------------------------------------------------------------------------
def test_history_levels_and_paging(client: TestClient) -> None:
    created = create(client, patient())
    rid = created["id"]
    for gender in ("female", "other", "unknown"):
        client.put(f"{FHIR}/Patient/{rid}", json=dict(created, gender=gender), headers=JSON)
    create(client, {"resourceType": "Organization", "name": "Acme Health Plan"})
    instance = client.get(f"{FHIR}/Patient/{rid}/_history").json()
    assert instance["type"] == "history"
    assert [e["resource"]["meta"]["versionId"] for e in instance["entry"]] == ["4", "3", "2", "1"]
    type_level = client.get(f"{FHIR}/Patient/_history").json()
    assert len(type_level["entry"]) == 4
    system = client.get(f"{FHIR}/_history").json()
    assert len(system["entry"]) == 5
    page = client.get(f"{FHIR}/_history", params={"_count": 2}).json()
    seen = [e["fullUrl"] + e["response"]["etag"] for e in page["entry"]]
    while True:
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not nxt:
            break
        page = client.get(nxt[0]).json()
        seen += [e["fullUrl"] + e["response"]["etag"] for e in page["entry"]]
    assert len(seen) == 5
    assert len(set(seen)) == 5


def test_history_since_and_tampered_page_token(client: TestClient) -> None:
    create(client, patient())
    assert client.get(f"{FHIR}/_history", params={"_since": "2999-01-01T00:00:00Z"}).json().get("entry") == []
    assert len(client.get(f"{FHIR}/_history", params={"_since": "2001"}).json()["entry"]) == 1
    assert client.get(f"{FHIR}/_history", params={"_since": "yesterday"}).status_code == 400
    assert client.get(f"{FHIR}/_history", params={"_page_token": "abc.def"}).status_code == 400


def test_history_at(client: TestClient) -> None:
    created = create(client, patient())
    at = client.get(f"{FHIR}/Patient/{created['id']}").json()["meta"]["lastUpdated"]
    client.put(f"{FHIR}/Patient/{created['id']}", json=dict(created, gender="female"), headers=JSON)
    entries = client.get(f"{FHIR}/Patient/_history", params={"_at": at}).json()["entry"]
    assert [e["resource"]["meta"]["versionId"] for e in entries] == ["1"]


# ---- validation and bad input ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", 400),
        (b"{not json", 400),
        (b"[]", 400),
        (b'{"resourceType": "Observation"}', 400),
        (b'{"resourceType": "Patient", "gender": "robot"}', 400),
        (b'{"resourceType": "Patient", "unknownElement": 1}', 400),
        (b'{"resourceType": "Patient", "birthDate": "1974-13-45"}', 400),
        (b'"just a string"', 400),
        (b"\xff\xfe\x00garbage", 400),
    ],
)
def test_bad_bodies_get_operation_outcomes(client: TestClient, body: bytes, status: int) -> None:
    response = client.post(f"{FHIR}/Patient", content=body, headers=JSON)
    assert response.status_code == status
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"]


def test_validation_lists_every_issue_with_location(client: TestClient) -> None:
    body = {"resourceType": "Patient", "gender": "robot", "birthDate": "yesterday", "foo": 1}
    response = client.post(f"{FHIR}/Patient", json=body, headers=JSON)
    assert response.status_code == 400
    expressions = {e for issue in response.json()["issue"] for e in issue.get("expression", [])}
    assert {"Patient.gender", "Patient.birthDate", "Patient.foo"} <= expressions


def test_oversized_body_is_413(client: TestClient, services: Any) -> None:
    services.settings.max_body_bytes = 1000
    big = patient(name=[{"family": "x" * 5000}])
    assert client.post(f"{FHIR}/Patient", json=big, headers=JSON).status_code == 413


def test_missing_content_type_is_415(client: TestClient) -> None:
    response = client.post(f"{FHIR}/Patient", content=orjson.dumps(patient()))
    assert response.status_code == 415


def test_unknown_environment_and_route(client: TestClient) -> None:
    assert client.get("/staging/fhir/Patient/1").status_code == 404
    assert client.get("/staging/fhir/Patient/1").json()["resourceType"] == "OperationOutcome"
    assert client.get(f"{FHIR}/Patient/1/_history/1/extra").status_code == 404


def test_validate_operation_stores_nothing(client: TestClient) -> None:
    bad = client.post(
        f"{FHIR}/Patient/$validate", json={"resourceType": "Patient", "gender": "x"}, headers=JSON
    )
    assert bad.status_code == 200
    assert any(i["severity"] == "error" for i in bad.json()["issue"])
    good = client.post(f"{FHIR}/Patient/$validate", json=patient(), headers=JSON)
    assert all(i["severity"] not in ("error", "fatal") for i in good.json()["issue"])
    params = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": patient()}]}
    assert client.post(f"{FHIR}/Patient/$validate", json=params, headers=JSON).status_code == 200
    assert client.get(f"{FHIR}/Patient/_history").json()["entry"] == []


# ---- environments and bases ----------------------------------------------------------------------
def test_environments_are_isolated(client: TestClient) -> None:
    created = create(client, patient())
    assert client.get(f"/production/fhir/Patient/{created['id']}").status_code == 404
    assert client.get("/production/fhir/_history").json()["entry"] == []


def test_directory_is_read_only_and_limited_to_directory_types(client: TestClient) -> None:
    org = {"resourceType": "Organization", "name": "Acme Clinic"}
    assert client.post("/sandbox/directory/Organization", json=org, headers=JSON).status_code == 405
    stored = create(client, org)
    assert client.get(f"/sandbox/directory/Organization/{stored['id']}").status_code == 200
    assert client.get("/sandbox/directory/Patient/1").status_code == 404
    assert client.delete(f"/sandbox/directory/Organization/{stored['id']}").status_code == 405


def test_metadata_is_generated(client: TestClient) -> None:
    fhir = client.get(f"{FHIR}/metadata").json()
    assert fhir["resourceType"] == "CapabilityStatement"
    assert fhir["fhirVersion"] == "4.0.1"
    types = {r["type"]: r for r in fhir["rest"][0]["resource"]}
    assert "ExplanationOfBenefit" in types
    eob_params = {p["name"] for p in types["ExplanationOfBenefit"]["searchParam"]}
    assert {"patient", "_id", "_lastUpdated"} <= eob_params
    assert {"code": "create"} in types["Patient"]["interaction"]
    directory = client.get("/sandbox/directory/metadata").json()
    dtypes = {r["type"]: r for r in directory["rest"][0]["resource"]}
    assert "Patient" not in dtypes
    assert "PractitionerRole" in dtypes
    assert {"code": "create"} not in dtypes["Practitioner"]["interaction"]


# ---- batch and transaction --------------------------------------------------------------------------
def test_transaction_rewrites_urn_uuid_references(client: TestClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
                "resource": patient(),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059",
                "resource": {
                    "resourceType": "Coverage",
                    "status": "active",
                    "beneficiary": {"reference": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"},
                    "payor": [{"display": "Acme"}],
                },
                "request": {"method": "POST", "url": "Coverage"},
            },
        ],
    }
    response = client.post(FHIR, json=bundle, headers=JSON)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses == ["201 Created", "201 Created"]
    patient_location = result["entry"][0]["response"]["location"]
    coverage_location = result["entry"][1]["response"]["location"]
    coverage = client.get(f"{FHIR}/{coverage_location.rsplit('/_history', 1)[0]}").json()
    assert coverage["beneficiary"]["reference"] == patient_location.rsplit("/_history", 1)[0]


def test_transaction_is_atomic(client: TestClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            {
                "resource": {"resourceType": "Patient", "gender": "robot"},
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    response = client.post(FHIR, json=bundle, headers=JSON)
    assert response.status_code == 400
    assert "entry[1]" in response.json()["issue"][0]["diagnostics"]
    assert client.get(f"{FHIR}/_history").json()["entry"] == []


def test_batch_runs_entries_independently(client: TestClient) -> None:
    existing = create(client, patient())
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            {
                "resource": {"resourceType": "Patient", "gender": "robot"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {"request": {"method": "GET", "url": f"Patient/{existing['id']}"}},
            {"request": {"method": "GET", "url": "Patient/missing"}},
            {"request": {"method": "DELETE", "url": f"Patient/{existing['id']}"}},
            {"request": {"method": "BREW", "url": "Coffee"}},
        ],
    }
    response = client.post(FHIR, json=bundle, headers=JSON)
    assert response.status_code == 200
    entries = response.json()["entry"]
    statuses = [e["response"]["status"].split()[0] for e in entries]
    assert statuses == ["201", "400", "200", "404", "204", "400"]
    assert entries[2]["resource"]["id"] == existing["id"]
    assert entries[1]["response"]["outcome"]["resourceType"] == "OperationOutcome"


def test_transaction_patch_with_binary(client: TestClient) -> None:
    created = create(client, patient())
    ops = base64.b64encode(orjson.dumps([{"op": "replace", "path": "/gender", "value": "other"}])).decode()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Binary",
                    "contentType": "application/json-patch+json",
                    "data": ops,
                },
                "request": {"method": "PATCH", "url": f"Patient/{created['id']}"},
            }
        ],
    }
    assert client.post(FHIR, json=bundle, headers=JSON).status_code == 200
    assert client.get(f"{FHIR}/Patient/{created['id']}").json()["gender"] == "other"


@pytest.mark.parametrize(
    "bundle",
    [
        {"resourceType": "Bundle", "type": "collection", "entry": []},
        {"resourceType": "Patient"},
        {"resourceType": "Bundle", "type": "transaction", "entry": "nope"},
        {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {}}]},
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"request": {"method": "POST", "url": "Nope"}}],
        },
    ],
)
def test_bad_bundles_are_400(client: TestClient, bundle: dict[str, Any]) -> None:
    response = client.post(FHIR, json=bundle, headers=JSON)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
