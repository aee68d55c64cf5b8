"""The token response (RFC 6749 §5.1; SMART App Launch 2.2 "Token response"; OIDC Core §3.1.3.3).

Split in two so that a grant writes its tokens in its own transaction (the code's consumption or the refresh
token's rotation and the new tokens: one durable commit per grant), and signs the ID token and builds the
body after that commit, holding no database connection while it signs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from openpayer.oauth.clients import Client
from openpayer.oauth.profile import profile_claims
from openpayer.oauth.scopes import OFFLINE, OPENID, PROFILE
from openpayer.security.audit import AuditEvent

if TYPE_CHECKING:
    from openpayer.oauth.service import AuthServer, Urls


@dataclass(frozen=True, slots=True)
class Issued:
    """Tokens written in a grant's transaction, and what the response says about them."""

    access: str
    refresh: str | None
    expires_in: int
    scope: str
    member_id: int
    patient_id: str
    nonce: str | None
    auth_time: int


def issue_in(
    conn: Connection,
    server: AuthServer,
    urls: Urls,
    client: Client,
    *,
    grant_id: int,
    grant_expires_at: int,
    member_id: int,
    patient_id: str,
    scope: str,
    nonce: str | None,
    auth_time: int,
    code_digest: str | None,
    rotating: int | None = None,
) -> Issued:
    """Access token (≤ 1 h, never past the grant), `refresh_token` with offline_access: one INSERT in the
    caller's transaction, which has checked that the grant is active; with `rotating` (PostgreSQL), the
    same statement marks that refresh token rotated."""
    now = server.clock.now()
    lifetime = min(server.settings.auth_access_token_lifetime, 3600)
    kinds = [("access", min(now + lifetime, grant_expires_at))]
    if OFFLINE in scope.split():
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
        rotating=rotating,
    )
    return Issued(
        access=tokens[0],
        refresh=tokens[1] if len(tokens) > 1 else None,
        expires_in=min(lifetime, grant_expires_at - now),
        scope=scope,
        member_id=member_id,
        patient_id=patient_id,
        nonce=nonce,
        auth_time=auth_time,
    )


def token_response(server: AuthServer, urls: Urls, client: Client, issued: Issued) -> dict[str, Any]:
    """The body for tokens committed by `issue_in`: with `id_token` when openid was granted."""
    granted = issued.scope.split()
    body: dict[str, Any] = {
        "access_token": issued.access,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
        "patient": issued.patient_id,
    }
    if issued.refresh is not None:
        body["refresh_token"] = issued.refresh
    if OPENID in granted:
        body["id_token"] = server.id_token(
            urls,
            client_id=client.client_id,
            member_id=issued.member_id,
            patient_id=issued.patient_id,
            nonce=issued.nonce,
            auth_time=issued.auth_time,
            extra=profile_claims(server.reach.fhir, urls.env, issued.patient_id)
            if PROFILE in granted
            else None,
        )
    server.audit.record(
        urls.env,
        AuditEvent.TOKEN_ISSUED,
        200,
        client_id=client.client_id,
        member_id=issued.member_id,
        patient_id=issued.patient_id,
    )
    return body
