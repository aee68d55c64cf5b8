"""The token response (RFC 6749 §5.1; SMART App Launch 2.2 "Token response"; OIDC Core §3.1.3.3)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openpayer.db import write_transaction
from openpayer.oauth.clients import Client
from openpayer.oauth.errors import InvalidGrantError
from openpayer.oauth.profile import profile_claims
from openpayer.oauth.scopes import OFFLINE, OPENID, PROFILE
from openpayer.security.audit import AuditEvent

if TYPE_CHECKING:
    from openpayer.oauth.service import AuthServer, Urls


def issue_tokens(
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
) -> dict[str, Any]:
    """Access token (≤ 1 h), `refresh_token` with offline_access, `id_token` with openid; one grant."""
    now = server.clock.now()
    lifetime = min(server.settings.auth_access_token_lifetime, 3600)
    granted = scope.split()
    with write_transaction(server.engine) as conn:
        grant = server.grants.get(conn, grant_id)
        if grant is None or not grant.active(now):
            raise InvalidGrantError("the member's authorization has been revoked or has expired")

        def issue(kind: str, expires_at: int) -> str:
            return server.tokens.issue(
                conn,
                env=urls.env,
                kind=kind,
                client_id=client.client_id,
                scope=scope,
                expires_at=expires_at,
                grant_id=grant_id,
                member_id=member_id,
                patient_id=patient_id,
                code_digest=code_digest,
            )

        access = issue("access", min(now + lifetime, grant.expires_at))
        refresh = issue("refresh", grant.expires_at) if OFFLINE in granted else None
    body: dict[str, Any] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": min(lifetime, grant.expires_at - now),
        "scope": scope,
        "patient": patient_id,
    }
    if refresh is not None:
        body["refresh_token"] = refresh
    if OPENID in granted:
        body["id_token"] = server.id_token(
            urls,
            client_id=client.client_id,
            member_id=member_id,
            patient_id=patient_id,
            nonce=nonce,
            auth_time=auth_time,
            extra=profile_claims(server.engine, urls.env, patient_id) if PROFILE in granted else None,
        )
    server.audit.record(
        urls.env,
        AuditEvent.TOKEN_ISSUED,
        200,
        client_id=client.client_id,
        member_id=member_id,
        patient_id=patient_id,
    )
    return body
