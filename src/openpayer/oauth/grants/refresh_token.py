"""Refresh token grant (RFC 6749 §6; RFC 9700 §4.14.2 rotation and reuse detection).

Bound to the client it was issued to; `scope` may narrow but never widen; every use rotates the token,
and presenting a rotated token again revokes the whole grant (the member's consent and all its tokens).
The rotation and the new tokens are one transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openpayer.db import write_transaction
from openpayer.oauth.audit import AuditEvent
from openpayer.oauth.clients import Authenticated
from openpayer.oauth.errors import InvalidGrantError, InvalidRequestError, InvalidScopeError
from openpayer.oauth.grants.issue import IssuedTokens, issue_tokens

if TYPE_CHECKING:
    from openpayer.oauth.service import AuthServer, Urls


def refresh(
    server: AuthServer, urls: Urls, authenticated: Authenticated, form: dict[str, str]
) -> dict[str, Any]:
    token = form.get("refresh_token")
    if not token:
        raise InvalidRequestError("refresh_token is required")
    client = authenticated.client
    now = server.clock.now()
    issued: IssuedTokens | None = None
    with write_transaction(server.engine) as conn:
        check = server.clients.unchanged_check(authenticated)
        info = server.tokens.find(conn, urls.env, token, "refresh", client_check=check)
        mine = info is not None and info.client_id == client.client_id
        if not (mine and check is not None and info is not None and info.client_current):
            server.clients.confirm(conn, authenticated)  # not checked in `find`, or changed
        if info is None or not mine:
            raise InvalidGrantError("the refresh token is not valid")
        scope = _narrowed(info.scope, form.get("scope"))
        usable = info.active(now) and info.grant_id is not None and info.patient_id is not None
        reused = info.rotated_at is not None or (usable and not server.tokens.mark_rotated(conn, info.id))
        if reused and info.grant_id is not None:
            server.tokens.revoke_grant(conn, info.grant_id)
        elif (
            usable
            and info.grant_id is not None
            and info.member_id is not None
            and info.patient_id is not None
        ):
            issued = issue_tokens(
                conn,
                server,
                urls,
                client,
                grant_id=info.grant_id,
                member_id=info.member_id,
                patient_id=info.patient_id,
                scope=scope,
                nonce=None,
                auth_time=info.issued_at,
                code_digest=info.code_digest,
                grant_expires_at=info.grant_expires_at,
            )
    if reused:
        server.audit.record(
            urls.env,
            AuditEvent.REFRESH_REUSE,
            400,
            client_id=client.client_id,
            member_id=info.member_id,
            patient_id=info.patient_id,
        )
        raise InvalidGrantError("the refresh token was already used; the authorization is revoked")
    if issued is None:
        raise InvalidGrantError("the refresh token has expired or been revoked")
    return issued.respond(server, urls)


def _narrowed(original: str, requested: str | None) -> str:
    """RFC 6749 §6: the new scope may leave out, never add."""
    if not requested:
        return original
    wanted = list(dict.fromkeys(requested.split()))
    wider = [s for s in wanted if s not in set(original.split())]
    if wider:
        raise InvalidScopeError("a refresh may not widen the scope: " + " ".join(wider))
    return " ".join(wanted)
