"""HEAD is answered wherever GET is (RFC 9110 §9.3.2): the same status and headers, and no content. A
method an address does not answer gets 405 with the methods it does in `Allow` (RFC 9110 §15.5.6). Both a
405 and a 404 come in the body of the address's area: FHIR an OperationOutcome, the authorization server's
JSON endpoints RFC 6749's error, pages a readable page, the rest RFC 9457 problem details."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from httpx import Response

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


def _fhir(response: Response) -> None:
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.json()["resourceType"] == "OperationOutcome"


def _oauth(response: Response) -> None:
    """RFC 6749 §5.2's body, which an app's OAuth library reads."""
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "invalid_request"
    assert response.headers["cache-control"] == "no-store"


def _problem(response: Response) -> None:
    """RFC 9457 problem details, for a client that did not ask for a page."""
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == response.status_code


def _page(response: Response) -> None:
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>" in response.text
    assert "OperationOutcome" not in response.text


@pytest.mark.parametrize(
    ("method", "path", "allowed", "body"),
    [
        ("GET", "/sandbox/auth/token", {"POST"}, _oauth),  # refused by the router
        ("DELETE", "/sandbox/auth/jwks", {"GET", "HEAD"}, _oauth),
        ("PUT", "/sandbox/auth/authorize", {"GET", "HEAD", "POST"}, _page),  # a member page
        ("PATCH", "/healthz", {"GET", "HEAD"}, _problem),
        ("POST", "/docs", {"GET", "HEAD"}, _page),
        ("DELETE", "/sandbox/directory/Practitioner", {"GET", "HEAD"}, _fhir),  # refused by the read-only API
        ("PUT", "/sandbox/directory/Practitioner/any", {"GET", "HEAD"}, _fhir),
        ("POST", "/sandbox/directory/Practitioner/any", {"GET", "HEAD"}, _fhir),
        ("POST", "/sandbox/fhir/Patient/any", {"GET", "HEAD", "PUT", "PATCH", "DELETE"}, _fhir),
        ("POST", "/sandbox/fhir/Patient/any/Observation", {"GET", "HEAD"}, _fhir),
        ("GET", "/sandbox/fhir/Patient/$member-match", {"POST"}, _fhir),
        ("DELETE", "/sandbox/fhir/metadata", {"GET", "HEAD"}, _fhir),  # the type route's; it answered 404
        ("POST", "/sandbox/directory/metadata", {"GET", "HEAD"}, _fhir),
        ("GET", "/sandbox/directory/_search", {"POST"}, _fhir),
        ("PUT", "/sandbox/directory/_history", {"GET", "HEAD"}, _fhir),
    ],
)
def test_a_refused_method_is_told_what_the_address_allows(
    client: TestClient, method: str, path: str, allowed: set[str], body: Callable[[Response], None]
) -> None:
    refused = client.request(method, path, headers={"Content-Type": "application/fhir+json"})
    assert refused.status_code == 405
    assert {m.strip() for m in refused.headers["allow"].split(",")} == allowed
    body(refused)


@pytest.mark.parametrize(
    ("path", "accept", "body"),
    [
        ("/sandbox/fhir/NoSuchType", "", _fhir),
        ("/sandbox/directory/Practitioner/any/more/than/a/route", "", _fhir),
        ("/sandbox/auth/nothing", "", _oauth),
        ("/sandbox/auth/token/more", "", _oauth),
        ("/sandbox/auth/account/nothing", "text/html", _page),
        ("/docs/nothing", "text/html", _page),
        ("/portal/nothing", "text/html", _page),
        ("/nothing", "text/html", _page),
        ("/nothing", "application/json", _problem),
        ("/static/nothing.css", "", _problem),
    ],
)
def test_an_address_nothing_answers_is_told_in_its_areas_own_body(
    client: TestClient, path: str, accept: str, body: Callable[[Response], None]
) -> None:
    missing = client.get(path, headers={"Accept": accept} if accept else {})
    assert missing.status_code == 404
    body(missing)
