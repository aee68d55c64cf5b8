"""A bounded fuzz of every route, on whichever database the suite runs: zero 5xx.

Two parts. Schemathesis generates requests from the application's own OpenAPI document (which declares the
`{env}`, `{rtype}`, `{rid}`… path parameters); the test adds to each operation the search parameters and a
FHIR JSON body that the routes read without declaring, so that generated values reach the parsers, the
search SQL and the writes. Then a fixed list of the inputs that once gave 500s (NUL characters, invalid
UTF-8, huge value lists, repeated includes) is thrown at every route, the authorization server's included.
The number of generated examples is bounded (the whole file runs in well under a minute per database).
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings

from openpayer.app import build_services, create_app
from openpayer.config import Settings

TYPES = [
    "Patient",
    "Observation",
    "Coverage",
    "ExplanationOfBenefit",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Device",
    "Bundle",
    "Nope",
]
SEARCH_PARAMS = [
    "_id",
    "name",
    "identifier",
    "patient",
    "date",
    "code",
    "_include",
    "_revinclude",
    "_include:iterate",
    "_sort",
    "_count",
    "_summary",
    "_elements",
    "_total",
    "subject.name",
    "_has:Observation:subject:code",
    "_lastUpdated",
    "address-postalcode",
    "_page_token",
]
RESOURCE_BODY = {
    "type": "object",
    "properties": {
        "resourceType": {"type": "string", "enum": TYPES},
        "id": {"type": "string"},
        "name": {"type": "array", "items": {"type": "object", "properties": {"family": {"type": "string"}}}},
        "identifier": {"type": "array", "items": {"type": "object"}},
        "status": {"type": "string"},
        "entry": {"type": "array", "items": {"type": "object"}},
        "type": {"type": "string", "enum": ["batch", "transaction", "searchset"]},
    },
    "required": ["resourceType"],
}


def fuzzable(schema: dict[str, Any]) -> dict[str, Any]:
    """The application's OpenAPI document, with the undeclared inputs the routes read added to it."""
    schema = copy.deepcopy(schema)
    for operations in schema["paths"].values():
        for method, operation in operations.items():
            for parameter in operation["parameters"]:
                if parameter["name"] == "rtype":
                    parameter["schema"] = {"type": "string", "enum": TYPES}
                elif parameter["name"] == "tail":
                    parameter["schema"] = {
                        "type": "string",
                        "enum": ["Observation", "$everything", "$validate", "x"],
                    }
            operation["parameters"].extend(
                {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                for name in SEARCH_PARAMS
            )
            if method in ("post", "put", "patch"):
                operation["requestBody"] = {
                    "required": False,
                    "content": {"application/fhir+json": {"schema": RESOURCE_BODY}},
                }
    return schema


def _document() -> dict[str, Any]:
    """The OpenAPI document of an application on a throwaway SQLite file (it does not depend on data)."""
    with tempfile.TemporaryDirectory() as home:
        settings_ = Settings(home=Path(home), secret_key="fuzz", auth_enforce=False)
        services = build_services(settings_)
        try:
            return fuzzable(create_app(settings_, services=services).openapi())
        finally:
            services.engine.dispose()


schema = schemathesis.openapi.from_dict(_document())


@schema.parametrize()
@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_generated_requests_never_get_a_5xx(case: Any, client: TestClient) -> None:
    """Each operation of the document, a few generated requests each, sent to this test's application."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    request = {key: kwargs[key] for key in ("method", "url", "params", "headers") if key in kwargs}
    if "json" in kwargs:
        request["content"] = json.dumps(kwargs["json"]).encode()
    elif kwargs.get("data") is not None:
        request["content"] = kwargs["data"]
    response = client.request(**request)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])


# ---- the inputs that once gave 500s, at every route -------------------------------------------------
ROUTES = [
    ("GET", "/sandbox/directory/Practitioner"),
    ("GET", "/sandbox/fhir/Patient"),
    ("POST", "/sandbox/fhir/Patient/_search"),
    ("GET", "/sandbox/fhir/Patient/x"),
    ("GET", "/sandbox/fhir/Patient/x/_history/1"),
    ("GET", "/sandbox/fhir/Patient/x/Observation"),
    ("GET", "/sandbox/fhir/Patient/x/$everything"),
    ("PUT", "/sandbox/fhir/Patient"),
    ("POST", "/sandbox/fhir/Patient"),
    ("DELETE", "/sandbox/fhir/Patient"),
    ("GET", "/sandbox/fhir/_history"),
    ("GET", "/sandbox/auth/authorize"),
    ("POST", "/sandbox/auth/authorize"),
    ("POST", "/sandbox/auth/token"),
    ("POST", "/sandbox/auth/introspect"),
    ("POST", "/sandbox/auth/revoke"),
    ("GET", "/sandbox/auth/userinfo"),
]
HUGE = ",".join(f"v{i}" for i in range(600))
QUERIES = [
    "name=%00",
    "_id=a%00",
    "client_id=%00&response_type=code&redirect_uri=https://a.example/cb&scope=openid",
    "name=%ff%fe%c3%28",
    f"name={HUGE}",
    f"identifier={HUGE}",
    "&".join(f"name=n{i}" for i in range(200)),
    "&".join(["_include:iterate=*"] * 50 + ["_revinclude:iterate=*"] * 50),
    "_sort=" + ",".join(["name"] * 40),
    "subject.name=" + HUGE,
]
BODIES: list[tuple[bytes, dict[str, str]]] = [
    (
        b"grant_type=client_credentials&client_id=%00&token=%00",
        {"Content-Type": "application/x-www-form-urlencoded"},
    ),
    (
        b"client_id=\xff\xfe&token=\xc3\x28&name=\xed\xa0\x80",
        {"Content-Type": "application/x-www-form-urlencoded"},
    ),
    (
        b'{"resourceType":"Patient","id":"a\\u0000","name":[{"family":"\\u0000"}]}',
        {"Content-Type": "application/fhir+json"},
    ),
    (b'{"resourceType":"Patient","name":[{"family":"\xff\xfe"}]}', {"Content-Type": "application/fhir+json"}),
    (b"", {"Authorization": "Basic " + base64.b64encode(b"a%00:b").decode()}),
    (b"", {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode()}),
]


def test_known_bad_inputs_never_get_a_5xx(client: TestClient) -> None:
    plain = (b"", {})
    cases = [(route, query, plain) for route, query in itertools.product(ROUTES, QUERIES)]
    cases += [(route, "", body) for route, body in itertools.product(ROUTES, BODIES)]
    for (method, path), query, (body, headers) in cases:
        response = client.request(method, f"{path}?{query}", content=body, headers=headers)
        assert response.status_code < 500, (method, path, query[:60], body[:40], response.text[:300])
        if path.startswith("/sandbox/auth/") and path != "/sandbox/auth/authorize":
            assert "error" in response.json() or response.status_code < 400, response.text[:300]
