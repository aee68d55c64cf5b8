"""HEAD is answered wherever GET is (RFC 9110 §9.3.2): the same status and headers, and no content."""

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
