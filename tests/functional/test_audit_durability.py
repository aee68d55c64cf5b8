"""Every member-data access is on record before its response leaves: a server killed with SIGKILL in the
middle of a load has a record for every request it answered (HIPAA audit controls, 45 CFR 164.312(b))."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.live import free_port

from openpayer.app import Services
from openpayer.config import Settings
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp
from openpayer.security.models import audit_event

ENV = "sandbox"
REDIRECT = "https://app.example.com/callback"


def start_server(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "OPENPAYER_HOME": str(settings.home),
        "OPENPAYER_DATABASE_URL": settings.resolved_database_url,
        "OPENPAYER_SECRET_KEY": "test-secret",
        "OPENPAYER_AUTH_ENFORCE": "true",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "openpayer.asgi:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    server = subprocess.Popen(
        [*command, "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise AssertionError("the server did not start")


def test_a_killed_server_has_a_record_of_every_request_it_answered(
    client: TestClient, services: Services, settings: Settings, world: dict[str, str]
) -> None:
    client_id, _ = services.auth.clients.register(ENV, name="Wallet", redirect_uris=[REDIRECT], public=True)
    token = SmartApp(client, client_id, REDIRECT).launch(
        "launch/patient patient/*.rs", "member-a", TEST_PASSWORD
    )
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    urls = [f"/{ENV}/fhir/Observation/{world['a_lab']}", f"/{ENV}/fhir/Observation?patient={world['a']}"]
    port = free_port()
    server = start_server(settings, port)
    answered = 0
    lock = threading.Lock()
    stop = threading.Event()

    def load(index: int) -> None:
        nonlocal answered
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for n in range(400):  # bounded: the kill ends it sooner
                if stop.is_set():
                    return
                try:
                    response = http.get(urls[(index + n) % 2], headers=headers)
                except httpx.HTTPError:
                    return
                assert response.status_code == 200, response.text
                with lock:
                    answered += 1

    threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while answered < 60 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.send_signal(signal.SIGKILL)  # mid-load: requests are in flight
        server.wait(timeout=10)
    finally:
        stop.set()
        if server.poll() is None:
            server.kill()
        for thread in threads:
            thread.join(timeout=30)
    assert answered >= 60
    with services.engine.connect() as conn:
        recorded = conn.execute(
            select(func.count()).where(
                audit_event.c.event == "fhir:access", audit_event.c.client_id == client_id
            )
        ).scalar_one()
    assert recorded >= answered, f"{answered} requests answered, {recorded} on record"
