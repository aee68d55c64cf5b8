"""The token endpoint caches clients in the process; a change to a client made by any process (another
worker, another host, the CLI) still takes effect on the next request. The changes here are written to the
database directly, as another process would: the serving process's cache is not told."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import func, select, update
from tests.loops import run_in_thread
from tests.statements import statement_log

from openpayer.app import Services, create_app
from openpayer.config import Settings
from openpayer.oauth import tokens as token_module
from openpayer.oauth.clients import digest
from openpayer.oauth.models import oauth_assertion_jti, oauth_client, oauth_token
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp

ENV = "sandbox"
TOKEN = f"/{ENV}/auth/token"
ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REDIRECT = "https://portal.example/callback"
SCOPE = "launch/patient openid fhirUser offline_access patient/*.read"


def _key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(4)})


def _backend(services: Services, key: RSAKey) -> str:
    client_id, _ = services.auth.clients.register(
        ENV,
        name="Analytics",
        redirect_uris=[],
        jwks={"keys": [key.as_dict(private=False)]},
        scopes=["system/*.rs"],
    )
    return client_id


def _assertion(client_id: str, key: RSAKey, *, jti: str | None = None, now: int | None = None) -> str:
    issued = now if now is not None else int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": f"http://testserver{TOKEN}",
        "exp": issued + 240,
        "jti": jti or secrets.token_hex(8),
    }
    return jwt.encode({"alg": "RS384", "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=["RS384"])


def _assertion_form(assertion: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "scope": "system/Patient.rs",
        "client_assertion_type": ASSERTION,
        "client_assertion": assertion,
    }


def _token(
    client: TestClient, client_id: str, key: RSAKey, *, jti: str | None = None, now: int | None = None
) -> Any:
    return client.post(TOKEN, data=_assertion_form(_assertion(client_id, key, jti=jti, now=now)))


def _change_client(services: Services, client_id: str, **values: Any) -> None:
    with services.engine.begin() as conn:
        conn.execute(update(oauth_client).where(oauth_client.c.client_id == client_id).values(**values))


def test_a_backend_client_suspended_elsewhere_is_refused_at_once(
    client: TestClient, services: Services
) -> None:
    key = _key()
    client_id = _backend(services, key)
    assert _token(client, client_id, key).status_code == 200  # the client is now cached
    _change_client(services, client_id, status="suspended")
    refused = _token(client, client_id, key)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    _change_client(services, client_id, status="active")
    assert _token(client, client_id, key).status_code == 200


def test_new_keys_written_elsewhere_take_effect_at_once(client: TestClient, services: Services) -> None:
    old, new = _key(), _key()
    client_id = _backend(services, old)
    assert _token(client, client_id, old).status_code == 200
    _change_client(services, client_id, jwks=json.dumps({"keys": [new.as_dict(private=False)]}))
    assert _token(client, client_id, old).status_code == 401
    assert _token(client, client_id, new).status_code == 200


def test_a_replay_is_refused_until_the_assertion_expires(client: TestClient, services: Services) -> None:
    key = _key()
    client_id = _backend(services, key)
    assert _token(client, client_id, key, jti="once").status_code == 200
    assert _token(client, client_id, key, jti="once").json()["error"] == "invalid_client"
    services.auth.clock.advance(600)  # the first assertion (exp + 240 s) has expired, its record not purged
    later = services.auth.clock.now()
    # A `jti` whose record has expired is no longer a replay: the record is replaced, not duplicated.
    assert _token(client, client_id, key, jti="once", now=later).status_code == 200
    assert _token(client, client_id, key, jti="once", now=later).json()["error"] == "invalid_client"
    with services.engine.connect() as conn:
        rows = conn.execute(select(oauth_assertion_jti.c.jti, oauth_assertion_jti.c.expires_at)).all()
    assert rows == [("once", later + 240)]


def test_a_confidential_app_suspended_or_given_a_new_secret_elsewhere_stops_at_once(
    client: TestClient, services: Services, world: dict[str, str]
) -> None:
    client_id, secret = services.auth.clients.register(ENV, name="Portal", redirect_uris=[REDIRECT])
    app = SmartApp(client, client_id, REDIRECT, client_secret=secret)
    tokens = app.launch(SCOPE, "member-a", TEST_PASSWORD)
    refreshed = app.refresh(tokens["refresh_token"])  # the client is now cached
    assert refreshed.status_code == 200
    _change_client(services, client_id, status="suspended")
    assert app.refresh(refreshed.json()["refresh_token"]).status_code == 401
    _change_client(services, client_id, status="active")
    refreshed = app.refresh(refreshed.json()["refresh_token"])
    assert refreshed.status_code == 200
    _change_client(services, client_id, secret_digest=digest("a new secret"))
    assert app.refresh(refreshed.json()["refresh_token"]).status_code == 401
    app.client_secret = "a new secret"
    assert app.refresh(refreshed.json()["refresh_token"]).status_code == 200


def test_a_new_secret_written_elsewhere_works_at_once_and_the_old_one_stops(
    client: TestClient, services: Services
) -> None:
    client_id, secret = services.auth.clients.register(ENV, name="Portal", redirect_uris=[REDIRECT])

    def answer(secret: str) -> int:
        # A symmetric client may not use client_credentials: 400 once authenticated, 401 when not.
        data = {"grant_type": "client_credentials", "scope": "system/*.rs"}
        return client.post(TOKEN, data=data, auth=(client_id, secret)).status_code

    assert answer(secret or "") == 400  # the client is now cached
    _change_client(services, client_id, secret_digest=digest("a new secret"))
    assert answer("a new secret") == 400
    assert answer(secret or "") == 401


def test_the_assertion_and_its_token_are_written_together_or_not_at_all(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A grant whose token cannot be written records no `jti` either: the same assertion works later."""
    key = _key()
    client_id = _backend(services, key)
    assert _token(client, client_id, key, jti="first").status_code == 200
    # Every token now gets the same value: the next token's digest collides with the one before it.
    monkeypatch.setattr(token_module, "secrets", SimpleNamespace(token_urlsafe=lambda _n: "collides"))
    assert _token(client, client_id, key, jti="second").status_code == 200
    assert _token(client, client_id, key, jti="third").status_code == 500
    monkeypatch.undo()
    with services.engine.connect() as conn:
        recorded = conn.execute(select(oauth_assertion_jti.c.jti).order_by(oauth_assertion_jti.c.jti))
        assert recorded.scalars().all() == ["first", "second"]
        assert conn.execute(select(func.count()).select_from(oauth_token)).scalar_one() == 2
    assert _token(client, client_id, key, jti="third").status_code == 200


def _postgresql_backend(services: Services) -> tuple[RSAKey, str]:
    if services.engine.dialect.name != "postgresql":
        pytest.skip("the one-statement grant and its group commit are PostgreSQL's (SQLite: a transaction)")
    key = _key()
    return key, _backend(services, key)


def test_a_grant_on_postgresql_is_one_statement_committed_with_the_grants_beside_it(
    client: TestClient, services: Services
) -> None:
    key, client_id = _postgresql_backend(services)
    assert _token(client, client_id, key).status_code == 200  # the client is now cached
    with statement_log(services.engine) as log:
        granted = _token(client, client_id, key, jti="single")
        replayed = _token(client, client_id, key, jti="single")
    assert granted.status_code == 200
    assert replayed.json()["error"] == "invalid_client"
    # Each grant alone here: one statement, committed before its answer. The replay: the same statement,
    # which wrote nothing; then the check that told a replay from a changed client.
    written = [s for s in log.transactions if any("oauth_token" in statement for statement in s)]
    assert [[s.split(" ", 3)[:3] for s in statements] for statements in written] == [
        [["WITH", "guard", "AS"]],
        [["WITH", "guard", "AS"]],
    ]


def test_grants_made_at_once_share_a_commit_and_an_assertion_sent_twice_gets_one_token(
    settings: Settings, services: Services
) -> None:
    key, client_id = _postgresql_backend(services)
    app = create_app(settings, services=services)

    async def grants(assertions: list[str]) -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            posts = (http.post(TOKEN, data=_assertion_form(assertion)) for assertion in assertions)
            return await asyncio.gather(*posts)

    run_in_thread(grants([_assertion(client_id, key)]))  # the client cached, the engine connected
    twice = _assertion(client_id, key, jti="twice")
    assertions = [_assertion(client_id, key) for _ in range(4)] + [twice, twice]
    with statement_log(services.engine) as log:
        answers = run_in_thread(grants(assertions))
    assert [answer.status_code for answer in answers[:5]] == [200] * 5
    assert answers[5].status_code == 401
    assert answers[5].json()["error"] == "invalid_client"
    assert "replay" in answers[5].json()["error_description"]
    written = [s for s in log.transactions if any("oauth_token" in statement for statement in s)]
    assert sum(len(statements) for statements in written) == 6  # every grant's statement, each once
    assert len(written) < 6  # fewer commits than grants
    with services.engine.connect() as conn:
        tokens = conn.execute(select(func.count()).select_from(oauth_token)).scalar_one()
    assert tokens == 1 + 5
