"""Client credentials grant for backend services (RFC 6749 §4.4; SMART Backend Services).

Only `private_key_jwt` clients; `system/` scopes limited to those the client was registered for; access
tokens of at most five minutes; never a refresh token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openpayer.db import single_statement, write_transaction
from openpayer.oauth.clients import Authenticated
from openpayer.oauth.errors import InvalidScopeError, UnauthorizedClientError
from openpayer.oauth.scopes import parse_scopes
from openpayer.security.audit import AuditEvent

if TYPE_CHECKING:
    from openpayer.oauth.service import AuthServer, Urls


def client_credentials(
    server: AuthServer,
    urls: Urls,
    authenticated: Authenticated,
    form: dict[str, str],
    known_types: frozenset[str],
) -> dict[str, Any]:
    """One transaction: the assertion's `jti` (and the client's confirmation) with the new token."""
    client = authenticated.client
    if client.auth_method != "private_key_jwt":
        raise UnauthorizedClientError(
            "client_credentials is for clients that authenticate with private_key_jwt"
        )
    registered = parse_scopes(client.scopes, contexts=("system",), special=()).resources
    requested = parse_scopes(form.get("scope"), contexts=("system",), known_types=known_types, special=())
    granted = [r for r in requested.resources if any(reg.covers(r) for reg in registered)]
    if not granted:
        raise InvalidScopeError("none of the requested system scopes is registered for this client")
    scope = " ".join(dict.fromkeys(r.text for r in granted))
    lifetime = min(server.settings.auth_backend_token_lifetime, 300)
    token = _issue(server, authenticated, env=urls.env, scope=scope, expires_at=server.clock.now() + lifetime)
    server.audit.record(urls.env, AuditEvent.TOKEN_ISSUED, 200, client_id=client.client_id)
    server.activity.authorized(urls.env, client.client_id)  # for the inactivity policy (oauth/activity.py)
    return {"access_token": token, "token_type": "Bearer", "expires_in": lifetime, "scope": scope}


def _issue(server: AuthServer, authenticated: Authenticated, *, env: str, scope: str, expires_at: int) -> str:
    """The token, written with the assertion's `jti` and the client's confirmation or not at all. On
    PostgreSQL one statement, committed with the grants waiting beside it (`db.GroupCommit`); elsewhere one
    transaction."""
    client = authenticated.client
    if server.engine.dialect.name == "postgresql" and authenticated.jti is not None:
        token = server.tokens.issue_guarded(
            server.engine,
            server.clients.jti_guard(authenticated),
            env=env,
            kind="access",
            client_id=client.client_id,
            scope=scope,
            expires_at=expires_at,
        )
        if token is None:
            with single_statement(server.engine) as conn:
                server.clients.refused(conn, authenticated)
        return token
    with write_transaction(server.engine) as conn:
        server.clients.confirm(conn, authenticated)
        return server.tokens.issue(
            conn, env=env, kind="access", client_id=client.client_id, scope=scope, expires_at=expires_at
        )
