"""A grant is one durable commit: a refresh token's rotation and its new tokens, or a code's consumption and
its tokens, are committed together (a crash between two commits left a spent token or code with nothing
issued for it, and each commit waits for the database's disk). The transactions are observed at the driver
(tests/statements.py).
A cached client changed by another process is still refused before anything is written."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from tests.statements import statement_log

from openpayer.app import Services
from openpayer.oauth import tokens as token_module
from openpayer.oauth.models import oauth_client, oauth_code
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp

ENV = "sandbox"
REDIRECT = "https://portal.example/callback"
SCOPE = "launch/patient openid fhirUser offline_access patient/*.read"


@pytest.fixture
def commits(services: Services) -> Iterator[list[list[str]]]:
    """The statements of every transaction committed on the engine, in order."""
    with statement_log(services.engine) as log:
        yield log.transactions


def _writing(committed: list[list[str]], table: str) -> list[list[str]]:
    """The committed transactions that wrote to `table`."""
    return [
        statements
        for statements in committed
        if any(s.lstrip().upper().startswith(("INSERT", "UPDATE", "WITH")) and table in s for s in statements)
    ]


def _app(client: TestClient, services: Services) -> SmartApp:
    client_id, secret = services.auth.clients.register(ENV, name="Portal", redirect_uris=[REDIRECT])
    return SmartApp(client, client_id, REDIRECT, client_secret=secret)


def test_a_refresh_rotates_and_issues_in_one_commit(
    client: TestClient, services: Services, world: dict[str, str], commits: list[list[str]]
) -> None:
    app = _app(client, services)
    tokens = app.launch(SCOPE, "member-a", TEST_PASSWORD)
    for cached in (False, True):  # the client read from the database, then from this process's cache
        commits.clear()
        refreshed = app.refresh(tokens["refresh_token"])
        assert refreshed.status_code == 200, (cached, refreshed.text)
        tokens = refreshed.json()
        [transaction] = _writing(commits, "oauth_token")
        if services.engine.dialect.name == "postgresql":
            # After the reads, one statement in autocommit: the rotation is a CTE of the tokens' INSERT.
            [statement] = transaction
            assert statement.startswith("WITH rotated AS (UPDATE oauth_token SET rotated_at")
            assert "INSERT INTO oauth_token" in statement
            continue
        rotation = [s for s in transaction if s.lstrip().upper().startswith("UPDATE")]
        issue = [s for s in transaction if s.lstrip().upper().startswith("INSERT")]
        assert len(rotation) == 1
        assert "rotated_at" in rotation[0]
        assert len(issue) == 1  # the access and the refresh token in one statement


def test_a_code_is_consumed_and_redeemed_in_one_commit(
    client: TestClient, services: Services, world: dict[str, str], commits: list[list[str]]
) -> None:
    app = _app(client, services)
    code = app.code(SCOPE, "member-a", TEST_PASSWORD)
    commits.clear()
    response = app.exchange(code)
    assert response.status_code == 200, response.text
    [transaction] = _writing(commits, "oauth_token")
    assert any(s.lstrip().upper().startswith("UPDATE") and "oauth_code" in s for s in transaction)
    assert _writing(commits, "oauth_code") == [transaction]


def test_a_refused_exchange_still_spends_the_code(
    client: TestClient, services: Services, world: dict[str, str]
) -> None:
    app = _app(client, services)
    code = app.code(SCOPE, "member-a", TEST_PASSWORD)
    wrong = app.exchange(code, verifier="x" * 43)
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    with services.engine.connect() as conn:
        assert conn.execute(select(oauth_code.c.used_at)).scalar_one() is not None
    again = app.exchange(code)
    assert again.status_code == 400
    assert "spent by an earlier token request" in again.json()["error_description"]


def test_a_cached_app_suspended_elsewhere_cannot_spend_a_code(
    client: TestClient, services: Services, world: dict[str, str]
) -> None:
    app = _app(client, services)
    tokens = app.launch(SCOPE, "member-a", TEST_PASSWORD)
    assert app.refresh(tokens["refresh_token"]).status_code == 200  # the client is now cached
    code = app.code(SCOPE, "member-a", TEST_PASSWORD)
    with services.engine.begin() as conn:  # as another process would: this one's cache is not told
        conn.execute(
            update(oauth_client).where(oauth_client.c.client_id == app.client_id).values(status="suspended")
        )
    refused = app.exchange(code)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    with services.engine.connect() as conn:
        assert (
            conn.execute(select(oauth_code.c.used_at).where(oauth_code.c.used_at.is_(None))).first()
            is not None
        )
    with services.engine.begin() as conn:
        conn.execute(
            update(oauth_client).where(oauth_client.c.client_id == app.client_id).values(status="active")
        )
    assert app.exchange(code).status_code == 200  # the refused attempt did not spend it


def test_a_refresh_whose_tokens_cannot_be_written_leaves_its_token_unspent(
    client: TestClient, services: Services, world: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rotation and the new tokens are written together or not at all (on PostgreSQL, one statement)."""
    app = _app(client, services)
    tokens = app.launch(SCOPE, "member-a", TEST_PASSWORD)
    # Both new tokens get the same value, so their INSERT fails on the unique digest after the rotation.
    monkeypatch.setattr(token_module, "secrets", SimpleNamespace(token_urlsafe=lambda _n: "collides"))
    assert app.refresh(tokens["refresh_token"]).status_code == 500
    monkeypatch.undo()
    services.auth.clock.advance(60)  # past the reuse grace: a spent token would now revoke the grant
    refreshed = app.refresh(tokens["refresh_token"])  # not spent: no reuse, the grant stands
    assert refreshed.status_code == 200, refreshed.text
    assert app.refresh(refreshed.json()["refresh_token"]).status_code == 200
