"""`openpayer healthcheck` against a running server (uvicorn on a loopback port): a SMART standalone launch
as the monitoring account and one /metadata call; each failure names its step, with exit status 1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from tests.live import free_port
from typer.testing import CliRunner

from openpayer.app import create_app
from openpayer.bootstrap import Services
from openpayer.cli.main import app as cli_app
from openpayer.oauth.testing import TEST_PASSWORD

REDIRECT = "https://monitor.example/callback"


@pytest.fixture
def server(services: Services, world: dict[str, str]) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(services.settings, services=services), host="127.0.0.1", port=port, log_level="warning"
    )
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert instance.started
    yield f"http://127.0.0.1:{port}/sandbox/fhir"
    instance.should_exit = True
    thread.join(timeout=10)


def register(services: Services, *, public: bool = True) -> tuple[str, str | None]:
    return services.auth.clients.register(
        "sandbox",
        name="Monitor",
        developer="Example Health Apps",
        privacy_policy_url="https://monitor.example/privacy",
        redirect_uris=[REDIRECT],
        public=public,
    )


def check(
    base: str, client_id: str, *extra: str, password: str = TEST_PASSWORD, secret: str = ""
) -> tuple[int, str]:
    args = [
        "healthcheck",
        base,
        "--client-id",
        client_id,
        "--redirect-uri",
        REDIRECT,
        "--username",
        "member-a",
    ]
    env = {"OPENPAYER_HEALTHCHECK_PASSWORD": password, "OPENPAYER_HEALTHCHECK_CLIENT_SECRET": secret}
    result = CliRunner().invoke(cli_app, [*args, *extra], env=env)
    return result.exit_code, result.output


def test_a_public_app_passes_and_counts_as_activity(server: str, services: Services) -> None:
    client_id, _ = register(services)
    code, output = check(server, client_id)
    assert code == 0, output
    assert output.startswith("ok: SMART launch and /metadata in ")
    assert "discovery=" in output
    assert "metadata=" in output
    seen = services.auth.activity.last_seen()[("sandbox", client_id)]
    assert seen.last_authorized_at is not None
    assert seen.last_call_at is not None
    code, output = check(server, client_id, "--json")
    assert code == 0, output
    body = json.loads(output)
    assert body["ok"] is True
    assert set(body["timings_ms"]) == {"discovery", "authorize", "sign-in", "consent", "token", "metadata"}


def test_a_confidential_app_authenticates_with_its_secret(server: str, services: Services) -> None:
    client_id, secret = register(services, public=False)
    assert secret is not None
    code, output = check(server, client_id, secret=secret)
    assert code == 0, output
    code, output = check(server, client_id, secret="not-the-secret")
    assert code == 1
    assert output.startswith("failed at token: HTTP 401: invalid_client")
    assert "not-the-secret" not in output


def test_each_failure_names_its_step(server: str, services: Services) -> None:
    client_id, _ = register(services)
    code, output = check(server, client_id, password="wrong password")
    assert code == 1
    assert output.startswith("failed at sign-in: the monitoring account was not signed in")
    assert "wrong password" not in output

    code, output = check(server, client_id, "--redirect-uri", "https://elsewhere.example/cb")
    assert code == 1
    assert output.startswith("failed at authorize: HTTP 400")
    assert "an address it has not registered" in output

    services.auth.clients.set_status("sandbox", client_id, "suspended")
    code, output = check(server, client_id)
    assert code == 1
    assert output.startswith("failed at authorize: HTTP 403")
    assert "This app is suspended by the health plan" in output  # a suspended client is not served

    unreachable = f"http://127.0.0.1:{free_port()}/sandbox/fhir"
    code, output = check(unreachable, client_id)
    assert code == 1
    assert output.startswith("failed at discovery: cannot reach the server")


def test_bad_usage_exits_2(server: str, services: Services) -> None:
    client_id, _ = register(services)
    assert check(server, client_id, password="")[0] == 2
    assert check(server, client_id, "--every", "monthly")[0] == 2
    assert check("ftp://x/fhir", client_id)[0] == 2
