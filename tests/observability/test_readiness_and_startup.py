"""`/readyz`, and the checks that keep a misconfigured host from serving: over HTTP and `serve`."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.live import free_port
from tests.observability.conftest import OPENPAYER, server_env

from openpayer.app import StartupRefused, build_services, create_app
from openpayer.config import Settings

REDIS_URL = "redis://127.0.0.1:6379/3"


def redis_available() -> bool:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return False
    return True


def test_readyz_reports_each_check(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "signing_keys": "ok"}}
    assert response.headers["cache-control"] == "no-store"


def test_readyz_checks_redis_when_configured(settings: Settings) -> None:
    dead = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/3"})
    services = build_services(dead)
    with TestClient(create_app(dead, services=services)) as http:
        response = http.get("/readyz")
    services.engine.dispose()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("failed (")
    if not redis_available():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    live = settings.model_copy(update={"redis_url": REDIS_URL})
    services = build_services(live)
    with TestClient(create_app(live, services=services)) as http:
        assert http.get("/readyz").json()["checks"]["redis"] == "ok"
    services.engine.dispose()


@pytest.fixture
def first_host(settings: Settings) -> Iterator[TestClient]:
    """Host A of a deployment: its secret sealed the signing keys it created when its JWKS was first read."""
    host_a = settings.model_copy(update={"secret_key": "host-a-secret"})
    services = build_services(host_a)
    with TestClient(create_app(host_a, services=services)) as http:
        assert http.get("/sandbox/auth/jwks").status_code == 200
        yield http
    services.engine.dispose()


def test_a_second_host_with_another_secret_refuses_to_start(
    first_host: TestClient, settings: Settings
) -> None:
    host_b = settings.model_copy(update={"secret_key": "host-b-secret"})
    services = build_services(host_b)
    app = create_app(host_b, services=services)
    with pytest.raises(StartupRefused, match="OPENPAYER_AUTH_KEY_ENCRYPTION_KEY") as refused, TestClient(app):
        pass
    assert "sandbox" in str(refused.value)
    assert "OPENPAYER_SECRET_KEY" in str(refused.value)
    # Run without the startup check (an ASGI server that skips the lifespan), /readyz still says why.
    unready = TestClient(app).get("/readyz")
    assert unready.status_code == 503
    assert "OPENPAYER_AUTH_KEY_ENCRYPTION_KEY" in unready.json()["checks"]["signing_keys"]
    services.engine.dispose()
    # With the deployment's key-encryption key it starts, whatever its own secret key.
    sharing = host_b.model_copy(update={"auth_key_encryption_key": "host-a-secret"})
    services = build_services(sharing)
    with TestClient(create_app(sharing, services=services)) as http:
        assert http.get("/readyz").status_code == 200
        assert http.get("/sandbox/auth/jwks").json() == first_host.get("/sandbox/auth/jwks").json()
    services.engine.dispose()


def test_openpayer_serve_refuses_with_another_secret(
    first_host: TestClient, settings: Settings, tmp_path: Path
) -> None:
    env = server_env(tmp_path, settings.resolved_database_url, "host-b-secret", log_format="json")
    done = subprocess.run(
        [str(OPENPAYER), "serve", "--no-migrate", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "refusing to start" in done.stderr
    assert "OPENPAYER_AUTH_KEY_ENCRYPTION_KEY" in done.stderr


def test_public_base_url_is_required_off_loopback(settings: Settings, tmp_path: Path) -> None:
    public = settings.model_copy(update={"host": "0.0.0.0"})
    services = build_services(public)
    with (
        pytest.raises(StartupRefused, match="OPENPAYER_PUBLIC_BASE_URL"),
        TestClient(create_app(public, services=services)),
    ):
        pass
    services.engine.dispose()
    for allowed in (
        {"dev": True},
        {"public_base_url": "https://api.example-plan.org"},
        {"host": "::1"},
        {"host": "localhost"},
    ):
        fine = public.model_copy(update=allowed)
        services = build_services(fine)
        with TestClient(create_app(fine, services=services)) as http:
            issuer = http.get("/sandbox/auth/.well-known/openid-configuration").json()["issuer"]
        services.engine.dispose()
        expected = allowed.get("public_base_url", "http://testserver")
        assert issuer == f"{expected}/sandbox/auth", allowed
    env = server_env(tmp_path, settings.resolved_database_url, "test-secret")
    done = subprocess.run(
        [str(OPENPAYER), "serve", "--no-migrate", "--host", "0.0.0.0", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "OPENPAYER_PUBLIC_BASE_URL must be set" in done.stdout + done.stderr
