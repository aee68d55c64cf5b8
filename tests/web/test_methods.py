"""HEAD is answered wherever GET is (RFC 9110 §9.3.2): the same status and headers, and no content. A
method an address does not answer gets 405 with the methods it does in `Allow` (RFC 9110 §15.5.6)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

ANSWERED_BY_GET = [
    "/sandbox/fhir/metadata",  # declared GET only, before the FHIR type route that answered its HEAD 404
    "/sandbox/directory/metadata",
    "/sandbox/fhir/.well-known/smart-configuration",
    "/sandbox/auth/.well-known/openid-configuration",
    "/sandbox/auth/jwks",
    "/sandbox/directory/Practitioner",
    "/docs",
    "/healthz",
]


@pytest.mark.parametrize("path", ANSWERED_BY_GET)
def test_head_answers_as_get_without_content(client: TestClient, path: str) -> None:
    got = client.get(path)
    head = client.head(path)
    assert got.status_code == 200
    assert head.status_code == 200
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.content == b""


def test_head_on_a_path_nothing_answers_is_still_not_found(client: TestClient) -> None:
    assert client.head("/sandbox/fhir/NoSuchType").status_code == 404
    assert client.head("/sandbox/auth/token").status_code == 405  # POST only


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/sandbox/auth/token", {"POST"}),  # refused by the router
        ("PATCH", "/healthz", {"GET", "HEAD"}),
        ("POST", "/docs", {"GET", "HEAD"}),
        ("DELETE", "/sandbox/directory/Practitioner", {"GET", "HEAD"}),  # refused by the read-only API
        ("PUT", "/sandbox/directory/Practitioner/any", {"GET", "HEAD"}),
        ("POST", "/sandbox/directory/Practitioner/any", {"GET", "HEAD"}),
        ("POST", "/sandbox/fhir/Patient/any", {"GET", "HEAD", "PUT", "PATCH", "DELETE"}),
        ("POST", "/sandbox/fhir/Patient/any/Observation", {"GET", "HEAD"}),
        ("GET", "/sandbox/fhir/Patient/$member-match", {"POST"}),
    ],
)
def test_a_refused_method_is_told_what_the_address_allows(
    client: TestClient, method: str, path: str, allowed: set[str]
) -> None:
    refused = client.request(method, path, headers={"Content-Type": "application/fhir+json"})
    assert refused.status_code == 405
    assert {m.strip() for m in refused.headers["allow"].split(",")} == allowed
    assert refused.json()["resourceType"] == "OperationOutcome"
