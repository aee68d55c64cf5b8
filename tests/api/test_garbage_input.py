"""Garbage thrown at every FHIR route never yields a 500 or a traceback: always a 4xx OperationOutcome."""

from __future__ import annotations

import random

import pytest
from fastapi.testclient import TestClient

ROUTES = [
    "/sandbox/fhir",
    "/sandbox/fhir/metadata",
    "/sandbox/fhir/_history",
    "/sandbox/fhir/Patient",
    "/sandbox/fhir/Patient/_search",
    "/sandbox/fhir/Patient/_history",
    "/sandbox/fhir/Patient/x",
    "/sandbox/fhir/Patient/x/_history",
    "/sandbox/fhir/Patient/x/_history/1",
    "/sandbox/fhir/Patient/$validate",
    "/sandbox/fhir/Patient/x/$everything",
    "/sandbox/fhir/Patient/x/Observation",
    "/sandbox/directory/Practitioner",
    "/sandbox/directory/Practitioner/x",
    "/nowhere/fhir/Patient",
]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
BODIES = [
    b"",
    b"{",
    b"null",
    b"[1,2,3]",
    b'{"resourceType": 7}',
    b'{"resourceType": "Patient", "id": {"a": 1}}',
    b'{"resourceType": "Bundle", "type": "transaction", "entry": [null, 1, "x"]}',
    b'{"resourceType": "Patient", "name": [' + b"[" * 200 + b"]" * 200 + b"]}",
    "ü€\u0000".encode(),
    bytes(random.Random(7).randrange(256) for _ in range(300)),
]
HEADERS = [
    {"Content-Type": "application/fhir+json"},
    {"Content-Type": "application/fhir+json", "If-Match": 'W/"abc"'},
    {"Content-Type": "text/plain"},
    {"Content-Type": "application/fhir+json", "Accept": "text/html"},
    {"Content-Type": "application/json-patch+json", "If-None-Exist": "&&&==="},
    {"Content-Type": "application/x-www-form-urlencoded", "Prefer": "handling=strict"},
]
QUERIES = ["", "?_count=-1", "?_format=xml", "?_summary=nope", "?_since=garbage", "?birthdate=lt20x1", "?%%%"]


@pytest.mark.parametrize("route", ROUTES)
def test_garbage_never_gets_a_500(client: TestClient, route: str) -> None:
    rng = random.Random(route)
    for method in METHODS:
        for _ in range(12):
            body = rng.choice(BODIES)
            headers = rng.choice(HEADERS)
            query = rng.choice(QUERIES)
            response = client.request(method, route + query, content=body, headers=headers)
            assert response.status_code < 500, (
                method,
                route + query,
                headers,
                body[:40],
                response.text[:300],
            )
            if route.startswith("/sandbox/") and response.status_code >= 400:
                outcome = response.json()
                assert outcome["resourceType"] == "OperationOutcome", outcome
                assert "Traceback" not in response.text
