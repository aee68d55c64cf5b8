"""The token response (RFC 6749 §5.1; SMART App Launch 2.2 "Token response"; OIDC Core §3.1.3.3).

Tokens are written in the grant's own transaction (one commit per grant, with the code or refresh token
it consumes); the ID token is signed and the issuance audited after that commit (`IssuedTokens.respond`),
so that no signing holds a database lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from openpayer.oauth.audit import AuditEvent
from openpayer.oauth.clients import Client
from openpayer.oauth.errors import InvalidGrantError
from openpayer.oauth.scopes import OFFLINE, OPENID

if TYPE_CHECKING:
    from openpayer.oauth.service import AuthServer, Urls


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    """Tokens written in a transaction not yet committed; `respond` after the commit."""

    body: dict[str, Any]
    client_id: str
    member_id: int
    patient_id: str
    nonce: str | None
    auth_time: int
    openid: bool

    def respond(self, server: AuthServer, urls: Urls) -> dict[str, Any]:
        body = dict(self.body)
        if self.openid:
            body["id_token"] = server.id_token(
                urls,
                client_id=self.client_id,
                member_id=self.member_id,
                patient_id=self.patient_id,
                nonce=self.nonce,
                auth_time=self.auth_time,
            )
        server.audit.record(
            urls.env,
            AuditEvent.TOKEN_ISSUED,
            200,
            client_id=self.client_id,
            member_id=self.member_id,
            patient_id=self.patient_id,
        )
        return body


def issue_tokens(
    conn: Connection,
    server: AuthServer,
    urls: Urls,
    client: Client,
    *,
    grant_id: int,
    member_id: int,
    patient_id: str,
    scope: str,
    nonce: str | None,
    auth_time: int,
    code_digest: str | None,
    grant_expires_at: int | None = None,
) -> IssuedTokens:
    """Access token (≤ 1 h), `refresh_token` with offline_access, `id_token` with openid; one grant.
    `grant_expires_at` is the grant's expiry when the caller has just read it, active, in `conn`."""
    now = server.clock.now()
    lifetime = min(server.settings.auth_access_token_lifetime, 3600)
    granted = scope.split()
    if grant_expires_at is None:
        grant = server.grants.get(conn, grant_id)
        if grant is None or not grant.active(now):
            raise InvalidGrantError("the member's authorization has been revoked or has expired")
        grant_expires_at = grant.expires_at
    kinds = [("access", min(now + lifetime, grant_expires_at))]
    if OFFLINE in granted:
        kinds.append(("refresh", grant_expires_at))
    tokens = server.tokens.issue_many(
        conn,
        env=urls.env,
        kinds=kinds,
        client_id=client.client_id,
        scope=scope,
        grant_id=grant_id,
        member_id=member_id,
        patient_id=patient_id,
        code_digest=code_digest,
    )
    body: dict[str, Any] = {
        "access_token": tokens[0],
        "token_type": "Bearer",
        "expires_in": min(lifetime, grant_expires_at - now),
        "scope": scope,
        "patient": patient_id,
    }
    if len(tokens) > 1:
        body["refresh_token"] = tokens[1]
    return IssuedTokens(body, client.client_id, member_id, patient_id, nonce, auth_time, OPENID in granted)
