"""`openpayer healthcheck --browser` against OpenPayer's own sign-in and consent pages on a live server:
chromium (Playwright) fills the forms with the selectors, the redirect back is intercepted, the HTTP
client exchanges the code and calls /metadata. Each failure names its step, with exit status 1."""

from __future__ import annotations

import os
import subprocess
import sys

from openpayer.app import Services

REDIRECT = "https://monitor.example/callback"
PASSWORD = "a monitoring password long enough"


def setup(services: Services) -> str:
    client_id, _ = services.auth.clients.register(
        "sandbox",
        name="Monitor",
        developer="Example Health Apps",
        privacy_policy_url="https://monitor.example/privacy",
        redirect_uris=[REDIRECT],
        public=True,
    )
    patient = services.fhir.create("sandbox", "Patient", {"resourceType": "Patient"}).stored.id
    services.auth.members.create("sandbox", "monitor-sandbox", PASSWORD, str(patient))
    return client_id


def check(server: str, client_id: str, *extra: str, password: str = PASSWORD) -> tuple[int, str]:
    args = [
        "healthcheck",
        f"{server}/sandbox/fhir",
        "--browser",
        "--client-id",
        client_id,
        "--redirect-uri",
        REDIRECT,
        "--username",
        "monitor-sandbox",
        "--timeout",
        "10",
        *extra,
    ]
    # A process of its own, as an operator runs it: Playwright's sync API cannot start twice in the process
    # that already drives the test browser.
    env = {**os.environ, "OPENPAYER_HEALTHCHECK_PASSWORD": password}
    result = subprocess.run(
        [sys.executable, "-m", "openpayer.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode, result.stdout + result.stderr


def test_the_browser_mode_signs_in_on_the_servers_pages_and_counts_as_activity(
    server: str, services: Services
) -> None:
    client_id = setup(services)
    code, output = check(server, client_id)
    assert code == 0, output
    assert output.startswith("ok: SMART launch and /metadata")
    assert "sign-in=" in output
    seen = services.auth.activity.last_seen()[("sandbox", client_id)]
    assert seen.last_authorized_at is not None
    assert seen.last_call_at is not None

    code, output = check(
        server,
        client_id,
        "--username-selector",
        "#username",
        "--password-selector",
        "#password",
        "--submit-selector",
        "button[name=signin]",
        "--consent-selector",
        "button[value=allow]",
    )
    assert code == 0, output


def test_the_browser_mode_names_the_failed_step(server: str, services: Services) -> None:
    client_id = setup(services)
    code, output = check(server, client_id, password="not the password at all")
    assert code == 1
    assert output.startswith("failed at sign-in:"), output
    code, output = check(server, client_id, "--redirect-uri", "https://elsewhere.example/cb")
    assert code == 1
    assert output.startswith("failed at authorize:"), output
    code, output = check(server, client_id, "--username-selector", "#no-such-field")
    assert code == 1
    assert output.startswith("failed at sign-in:"), output
    code, output = check(server, client_id, "--chromium", "/no/such/browser")
    assert code == 1
    assert "no browser at /no/such/browser" in output
