"""`/metrics` (Prometheus text, optional bearer token) and `X-Request-ID`, through HTTP."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from openpayer.app import Services, build_services, create_app
from openpayer.config import Settings
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp, two_member_world


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


SCRAPE = {"Authorization": "Bearer scrape-me-please"}


def scrape(client: TestClient) -> str:
    response = client.get("/metrics", headers=SCRAPE)
    assert response.status_code == 200
    return response.text


def requests_count(client: TestClient, route: str, method: str, status: str) -> float:
    labels = frozenset({("route", route), ("method", method), ("status", status)})
    return samples(scrape(client)).get(("openpayer_http_requests_total", labels), 0.0)


def test_metrics_count_requests_by_route_template_with_latency(client: TestClient) -> None:
    route = "/{env}/directory/{rtype}"
    before = requests_count(client, route, "GET", "200")
    for _ in range(3):
        assert client.get("/sandbox/directory/Organization").status_code == 200
    assert client.get("/sandbox/directory/Nope").status_code == 404
    response = client.get("/metrics", headers=SCRAPE)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = samples(response.text)
    labels = frozenset({("route", route), ("method", "GET"), ("status", "200")})
    assert values[("openpayer_http_requests_total", labels)] == before + 3
    assert values[("openpayer_http_request_duration_seconds_count", labels)] >= 3
    assert ("openpayer_http_request_duration_seconds_bucket", labels | {("le", "+Inf")}) in values
    # Paths never become labels: a scan of made-up paths is one series.
    for path in ("/nothing/here", "/wp-admin.php", "/sandbox/fhir/x/y/z/w/v"):
        client.get(path)
    text = scrape(client)
    assert "wp-admin" not in text
    assert 'route="unmatched"' in text
    assert "openpayer_db_pool_checked_out" in text
    assert "openpayer_db_pool_size" in text


def test_the_plain_routes_are_counted_by_their_template(client: TestClient) -> None:
    """The token endpoint and the probes are plain Starlette routes (no FastAPI request handling): they
    name their template as the FastAPI routes do, a wrong method (405) included."""
    token_route = "/{env}/auth/token"
    before = requests_count(client, token_route, "POST", "400")
    response = client.post("/sandbox/auth/token", data={"grant_type": "password"})
    assert response.status_code == 400
    assert requests_count(client, token_route, "POST", "400") == before + 1
    before = requests_count(client, "/healthz", "DELETE", "405")
    assert client.delete("/healthz").status_code == 405
    assert requests_count(client, "/healthz", "DELETE", "405") == before + 1


def test_an_unknown_method_is_counted_as_other(client: TestClient) -> None:
    client.request("PROPFIND", "/sandbox/directory/Organization")
    text = scrape(client)
    assert 'method="PROPFIND"' not in text
    assert 'method="other"' in text


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"metrics_token": SecretStr("scrape-me-please")})


@pytest.fixture
def guarded(settings: Settings, services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(settings, services=services), raise_server_exceptions=False) as http:
        yield http


def test_metrics_token_is_required_when_set(guarded: TestClient) -> None:
    assert guarded.get("/metrics").status_code == 401
    assert guarded.get("/metrics").headers["www-authenticate"].startswith("Bearer")
    assert guarded.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert guarded.get("/metrics", headers={"Authorization": "Basic scrape-me-please"}).status_code == 401
    ok = guarded.get("/metrics", headers={"Authorization": "Bearer scrape-me-please"})
    assert ok.status_code == 200
    assert "openpayer_http_requests_total" in ok.text


def test_sign_in_failures_are_counted(settings: Settings) -> None:
    services = build_services(settings.model_copy(update={"auth_enforce": True}))
    with TestClient(create_app(services.settings, services=services)) as guarded:
        _sign_in_failures_are_counted(guarded, services)
    services.engine.dispose()


def _sign_in_failures_are_counted(guarded: TestClient, services: Services) -> None:
    two_member_world(services, "sandbox")
    client_id, _ = services.auth.clients.register(
        "sandbox", name="Wallet", redirect_uris=["https://app.example.com/cb"], public=True
    )
    app = SmartApp(guarded, client_id, "https://app.example.com/cb")
    key = ("openpayer_signin_failures_total", frozenset({("env", "sandbox")}))
    before = samples(scrape(guarded)).get(key, 0.0)
    page = app.authorize("launch/patient patient/*.rs")
    assert app.sign_in(page.text, "member-a", "not the password").status_code == 401
    assert app.sign_in(page.text, "nobody", TEST_PASSWORD).status_code == 401
    assert samples(scrape(guarded))[key] == before + 2


def test_request_id_is_echoed_when_safe_and_generated_otherwise(client: TestClient) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.9_c-1"})
    assert given.headers["x-request-id"] == "lb-7f3a.9_c-1"
    for unsafe in ("a" * 65, "has space", "semi;colon", 'quote"d', ""):
        replaced = client.get("/healthz", headers={"X-Request-ID": unsafe})
        assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"]), unsafe
    first = client.get("/sandbox/directory/Organization").headers["x-request-id"]
    second = client.get("/sandbox/directory/Organization").headers["x-request-id"]
    assert first != second
    # On errors too: a FHIR 404, an unknown path, a refused method.
    assert "x-request-id" in client.get("/sandbox/directory/Organization/missing").headers
    assert "x-request-id" in client.get("/nowhere").headers
    assert "x-request-id" in client.delete("/healthz").headers


def test_request_log_event_carries_the_request_id_and_route_template(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    from openpayer.observability.logs import JsonFormatter

    with caplog.at_level(logging.INFO, logger="openpayer.http"):
        client.get("/sandbox/directory/Organization/some-id", headers={"X-Request-ID": "trace-42"})
    [record] = [r for r in caplog.records if r.name == "openpayer.http"]
    import json

    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "request"
    assert line["request_id"] == "trace-42"
    assert line["route"] == "/{env}/directory/{rtype}/{rid}"
    assert line["status"] == 404
    assert line["env"] == "sandbox"
    assert line["duration_ms"] >= 0
    assert "some-id" not in json.dumps(line)


def test_worker_processes_are_counted_together_in_multiprocess_mode(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR (several uvicorn workers), one scrape reports every process's counts."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = "from openpayer.observability.metrics import observe_request as o; o('/x', 'GET', 200, 0.01)"
    subprocess.run([sys.executable, "-c", count], env=env, check=True)
    scrape_after_count = (
        f"{count}; from openpayer.observability.metrics import exposition as e; print(e().decode())"
    )
    done = subprocess.run(
        [sys.executable, "-c", scrape_after_count], env=env, check=True, capture_output=True, text=True
    )
    labels = frozenset({("route", "/x"), ("method", "GET"), ("status", "200")})
    assert samples(done.stdout)[("openpayer_http_requests_total", labels)] == 2


def test_an_unexpected_error_still_carries_the_request_id_and_headers(
    settings: Settings, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings, services=services)

    def broken(member: str) -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken/{member}", broken)  # a route that fails, on the real application
    with (
        caplog.at_level(logging.INFO),
        TestClient(app, raise_server_exceptions=False) as http,
    ):
        response = http.get("/broken/member-secret-id", headers={"X-Request-ID": "oops-1"})
    assert response.status_code == 500
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.headers["x-request-id"] == "oops-1"
    assert response.headers["x-content-type-options"] == "nosniff"
    [event] = [r for r in caplog.records if r.getMessage() == "request"]
    assert event.levelno == logging.ERROR
    assert event.fields["status"] == 500  # type: ignore[attr-defined]
    assert event.fields["route"] == "/broken/{member}"  # type: ignore[attr-defined]
    [failure] = [r for r in caplog.records if r.getMessage().startswith("unhandled error")]
    assert "/broken/{member}" in failure.getMessage()
    assert "oops-1" in failure.getMessage()  # the request id this layer accepted (request.state)
    served = [r for r in caplog.records if not r.name.startswith("httpx")]  # not the test's own client
    leaks = [(r.name, r.getMessage()) for r in served if "member-secret-id" in r.getMessage()]
    assert leaks == []
