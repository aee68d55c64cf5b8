"""Input that used to end in a 500 (issue 13), each answered 4xx on both databases; the limits of a search;
and what the log of an unhandled error may hold."""

from __future__ import annotations

import base64
import logging
import os
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from starlette.requests import Request
from starlette.responses import Response
from typer.testing import CliRunner

from openpayer.app import Services
from openpayer.cli.main import app as cli_app
from openpayer.fhir.search.params import (
    MAX_CRITERIA,
    MAX_IDS,
    MAX_INCLUDES,
    MAX_VALUES_PER_PARAMETER,
    MAX_VALUES_PER_REQUEST,
)

FHIR = "/sandbox/fhir"
DIRECTORY = "/sandbox/directory"
JSON = {"Content-Type": "application/fhir+json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def basic(user: str, password: str = "secret") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# ---- NUL characters ----------------------------------------------------------------------------------------
FHIR_NUL = [
    ("GET", f"{DIRECTORY}/Practitioner?name=%00", {}),
    ("GET", f"{FHIR}/Patient?identifier=a%00b", {}),
    ("GET", f"{FHIR}/Patient/a%00", {}),
    ("GET", f"{DIRECTORY}/Practitioner/x%00/_history/1", {}),
    ("POST", f"{FHIR}/Patient/_search", {"content": b"name=%00", "headers": FORM}),
    (
        "POST",
        f"{FHIR}/Patient",
        {"content": b'{"resourceType":"Patient","gender":"a\\u0000"}', "headers": JSON},
    ),
    ("PUT", f"{FHIR}/Patient?identifier=x%00", {"content": b'{"resourceType":"Patient"}', "headers": JSON}),
    (
        "POST",
        f"{FHIR}/Patient",
        {"content": b'{"resourceType":"Patient"}', "headers": {**JSON, "If-None-Exist": "identifier=%00"}},
    ),
]


@pytest.mark.parametrize(("method", "url", "kwargs"), FHIR_NUL, ids=[c[1] for c in FHIR_NUL])
def test_nul_on_the_fhir_bases_is_a_400_outcome(
    client: TestClient, method: str, url: str, kwargs: dict
) -> None:
    response = client.request(method, url, **kwargs)
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "NUL" in response.text
    follow_up = client.get(f"{DIRECTORY}/Practitioner")  # the connection and the server carry on
    assert follow_up.status_code == 200


def test_nul_in_a_batch_entry_query_fails_that_entry(client: TestClient) -> None:
    entries = [
        {"request": {"method": "GET", "url": "Patient?name=%00"}},
        {"request": {"method": "DELETE", "url": "Patient?identifier=%00"}},
        {"request": {"method": "GET", "url": "Patient?name=x"}},
    ]
    response = client.post(
        FHIR, json={"resourceType": "Bundle", "type": "batch", "entry": entries}, headers=JSON
    )
    assert response.status_code == 200
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses == ["400 BadRequest", "400 BadRequest", "200 OK"]


def test_an_escaped_backslash_before_u0000_is_not_a_nul(client: TestClient) -> None:
    body = b'{"resourceType":"Patient","name":[{"text":"C:\\\\u0000"}]}'
    assert client.post(f"{FHIR}/Patient", content=body, headers=JSON).status_code == 201


AUTH_NUL = [
    (
        "POST",
        "/sandbox/auth/token",
        {"content": b"grant_type=client_credentials&client_id=%00", "headers": FORM},
    ),
    (
        "POST",
        "/sandbox/auth/token",
        {"content": b"grant_type=client_credentials", "headers": {**FORM, **basic("a%00")}},
    ),
    ("POST", "/sandbox/auth/introspect", {"content": b"token=x", "headers": {**FORM, **basic("a%00")}}),
    ("POST", "/sandbox/auth/introspect", {"content": b"token=x%00", "headers": {**FORM, **basic("a")}}),
    ("POST", "/sandbox/auth/revoke", {"content": b"token=x&client_id=%00", "headers": FORM}),
]


@pytest.mark.parametrize(("method", "url", "kwargs"), AUTH_NUL)
def test_nul_on_the_oauth_endpoints_is_invalid_request(
    client: TestClient, method: str, url: str, kwargs: dict
) -> None:
    response = client.request(method, url, **kwargs)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert response.headers["cache-control"] == "no-store"


def test_nul_on_the_authorize_page_is_a_readable_400(client: TestClient) -> None:
    response = client.get("/sandbox/auth/authorize?client_id=%00&response_type=code")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "NUL character" in response.text


@pytest.mark.parametrize(
    "url",
    [
        f"{DIRECTORY}/Practitioner?name=%ff%fe",
        f"{FHIR}/Patient/%c3%28",
        f"{FHIR}/Patient?_id=%ed%a0%80",
        "/sandbox/auth/authorize?client_id=%ff",
    ],
)
def test_invalid_utf8_is_never_a_500(client: TestClient, url: str) -> None:
    assert client.get(url).status_code < 500


def test_invalid_utf8_form_bodies_are_never_a_500(client: TestClient) -> None:
    for url in ("/sandbox/auth/token", "/sandbox/auth/introspect", f"{FHIR}/Patient/_search"):
        response = client.post(url, content=b"client_id=\xff\xfe&token=\xc3\x28", headers=FORM)
        assert response.status_code < 500, (url, response.text)


# ---- limits on a search ------------------------------------------------------------------------------------
def values(n: int, prefix: str = "n") -> str:
    return ",".join(f"{prefix}{i}" for i in range(n))


@pytest.mark.parametrize(
    ("param", "limit"),
    [
        ("name", MAX_VALUES_PER_PARAMETER),
        ("identifier", MAX_VALUES_PER_PARAMETER),
        ("family", 100),
        ("_id", MAX_IDS),
    ],
)
def test_values_per_parameter_are_limited(client: TestClient, param: str, limit: int) -> None:
    url = f"{DIRECTORY}/Practitioner?{param}="
    assert client.get(url + values(limit)).status_code == 200
    for n in (limit + 1, limit * 6):
        response = client.get(url + values(n))
        assert response.status_code == 400, response.text
        assert f"at most {limit} values" in response.text


def test_criteria_per_request_are_limited(client: TestClient) -> None:
    within = "&".join(f"name=n{i}" for i in range(MAX_CRITERIA))
    assert MAX_CRITERIA <= MAX_VALUES_PER_REQUEST
    assert client.get(f"{DIRECTORY}/Practitioner?{within}").status_code == 200
    response = client.get(f"{DIRECTORY}/Practitioner?{within}&family=x")
    assert response.status_code == 400
    assert f"at most {MAX_CRITERIA} criteria" in response.text


def test_values_per_request_are_limited(client: TestClient) -> None:
    """The largest searches allowed are answered (a chain through several target types among them)."""
    per_criterion = MAX_VALUES_PER_REQUEST // MAX_CRITERIA
    spread = "&".join(f"subject.name={values(per_criterion, f'c{i}x')}" for i in range(MAX_CRITERIA))
    assert client.get(f"{FHIR}/Observation?{spread}").status_code == 200
    wide = "&".join(f"name={values(MAX_VALUES_PER_PARAMETER, f'p{i}x')}" for i in range(2))
    assert client.get(f"{DIRECTORY}/Practitioner?{wide}").status_code == 200
    one_more = spread.replace("subject.name=", "subject.name=extra,", 1)
    response = client.get(f"{FHIR}/Observation?{one_more}")
    assert response.status_code == 400
    assert f"at most {MAX_VALUES_PER_REQUEST} values" in response.text


def test_include_work_is_bounded(client: TestClient, services: Services) -> None:
    org = client.post(
        f"{FHIR}/Organization", json={"resourceType": "Organization", "name": "Acme"}, headers=JSON
    )
    org_id = org.json()["id"]
    for i in range(3):
        role = {
            "resourceType": "PractitionerRole",
            "organization": {"reference": f"Organization/{org_id}"},
            "code": [{"text": f"r{i}"}],
        }
        client.post(f"{FHIR}/PractitionerRole", json=role, headers=JSON)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append("x")

    event.listen(services.engine, "before_cursor_execute", count)
    try:
        repeated = "&".join(["_include:iterate=*"] * 50 + ["_revinclude:iterate=*"] * 50)
        response = client.get(f"{FHIR}/PractitionerRole?{repeated}")
    finally:
        event.remove(services.engine, "before_cursor_execute", count)
    assert response.status_code == 200
    types = sorted(e["resource"]["resourceType"] for e in response.json()["entry"])
    assert types == ["Organization"] + ["PractitionerRole"] * 3
    assert len(statements) <= 12  # one page query and at most two include statements per iteration
    codes = ("organization", "practitioner", "location", "endpoint", "service", "*")
    distinct = "&".join(
        f"{name}=PractitionerRole:{code}" for code in codes for name in ("_include", "_include:iterate")
    )
    response = client.get(f"{FHIR}/PractitionerRole?{distinct}")
    assert response.status_code == 400
    assert f"at most {MAX_INCLUDES} distinct" in response.text
    specs = [
        f"_include=PractitionerRole:{c}" for c in ("organization", "practitioner", "location", "endpoint")
    ]
    specs += [f"_revinclude=Provenance:target{':' + t if t else ''}" for t in ("", "PractitionerRole")]
    assert len(specs) <= MAX_INCLUDES
    assert client.get(f"{FHIR}/PractitionerRole?" + "&".join(specs)).status_code == 200


def test_sort_keys_are_limited(client: TestClient) -> None:
    assert client.get(f"{DIRECTORY}/Practitioner?_sort=" + ",".join(["name"] * 6)).status_code == 400
    assert client.get(f"{DIRECTORY}/Practitioner?_sort=name,-_lastUpdated").status_code == 200


# ---- the log of an unhandled error -------------------------------------------------------------------------
def test_an_unhandled_error_logs_no_sql_parameters_or_request_values(
    client: TestClient, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing statement with a member's values bound: the log names the error, route and request id."""
    secret = "MEMBER-NUMBER-98765"

    async def failing(request: Request) -> Response:
        with services.engine.connect() as conn:
            conn.execute(
                text("SELECT nothing FROM no_such_table WHERE member = :m"), {"m": request.query_params["m"]}
            )
        return Response("unreachable")

    client.app.add_api_route("/{env}/boom/{rid}", failing, methods=["GET"])  # type: ignore[attr-defined]
    # raise_server_exceptions: the error must end in the application, never reach the server (which would
    # log it with its message and close the connection)
    with caplog.at_level(logging.DEBUG), TestClient(client.app, raise_server_exceptions=True) as strict:
        response = strict.get(f"/sandbox/boom/patient-4711?m={secret}", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 500
    assert response.json()["resourceType"] == "OperationOutcome"
    # everything logged on the server's side (the test client logs the URL it requested: left out)
    server_side = [r for r in caplog.records if not r.name.startswith("httpx")]
    logged = "\n".join(logging.Formatter().format(record) for record in server_side)
    assert "sqlalchemy.exc" in logged
    assert "/{env}/boom/{rid}" in logged
    assert "req-42" in logged
    assert secret not in logged
    assert "patient-4711" not in logged
    assert "no_such_table" not in logged  # not even the statement: its message is never logged
    assert secret not in response.text
    assert "no_such_table" not in response.text


# ---- files -------------------------------------------------------------------------------------------------
def test_the_sqlite_database_and_data_directory_are_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "data"
    monkeypatch.setenv("OPENPAYER_HOME", str(home))
    monkeypatch.delenv("OPENPAYER_DATABASE_URL", raising=False)
    monkeypatch.delenv("OPENPAYER_SECRET_KEY", raising=False)
    old = os.umask(0o022)
    try:
        result = CliRunner().invoke(cli_app, ["db", "upgrade"])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "openpayer.db").stat().st_mode) == 0o600
    for extra in home.glob("openpayer.db-*"):
        assert stat.S_IMODE(extra.stat().st_mode) == 0o600, extra
