"""Refresh token grant (RFC 6749 §6; RFC 9700 §4.14.2 rotation and reuse detection).

Bound to the client it was issued to; `scope` may narrow but never widen (a requested scope that the granted
scopes cover is a narrowing, however it is written: `patient/*.rs` covers `patient/ExplanationOfBenefit.rs`).
Every use rotates the token. Presenting a consumed (rotated) token again revokes the whole grant (the
member's consent and all its tokens), whatever else is wrong with the request (another client, a widened
scope), with one exception: the same client presenting it within `REFRESH_REUSE_GRACE` seconds of its
rotation gets a fresh pair, so that parallel refreshes (two tabs, a retried request) do not lock the member's
app out (docs/smart.md, "Refresh tokens").
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from openpayer.db import write_transaction
from openpayer.oauth.clients import Client
from openpayer.oauth.errors import InvalidGrantError, InvalidRequestError, InvalidScopeError
from openpayer.oauth.grants.issue import issue_tokens
from openpayer.oauth.scopes import parse_resource_scope
from openpayer.security.audit import AuditEvent
from openpayer.security.events import EventKind, Outcome

if TYPE_CHECKING:
    from openpayer.oauth.service import AuthServer, Urls

REFRESH_REUSE_GRACE = 10  # seconds


def refresh(server: AuthServer, urls: Urls, client: Client, form: dict[str, str]) -> dict[str, Any]:
    token = form.get("refresh_token")
    if not token:
        raise InvalidRequestError("refresh_token is required")
    now = server.clock.now()
    with write_transaction(server.engine) as conn:
        info = server.tokens.find(conn, urls.env, token, "refresh")
        if info is None:
            raise InvalidGrantError("the refresh token is not valid")
        own = hmac.compare_digest(info.client_id, client.client_id)
        usable = info.active(now) and info.grant_id is not None and info.patient_id is not None
        in_grace = info.rotated_at is not None and now - info.rotated_at <= REFRESH_REUSE_GRACE
        reused = info.rotated_at is not None and not (own and usable and in_grace)
        if reused and info.grant_id is not None:
            server.grants.revoke_in(conn, info.grant_id)
        if not reused:
            # Nothing is written before these checks: a refused request leaves the token as it was.
            if not own:
                raise InvalidGrantError("the refresh token is not valid")
            if not usable or info.grant_id is None or info.member_id is None or info.patient_id is None:
                raise InvalidGrantError("the refresh token has expired or been revoked")
            scope = narrowed(info.scope, form.get("scope"))
            # A concurrent refresh may have consumed it since `find`: that is a rotation just now, in grace.
            if info.rotated_at is None:
                server.tokens.mark_rotated(conn, info.id)
    if reused:
        server.security.record(
            EventKind.REFRESH_REUSE, Outcome.REFUSED, env=urls.env, client_id=client.client_id, status=400
        )
        server.audit.record(
            urls.env,
            AuditEvent.REFRESH_REUSE,
            400,
            client_id=client.client_id,
            member_id=info.member_id,
            patient_id=info.patient_id,
        )
        raise InvalidGrantError("the refresh token was already used; the authorization is revoked")
    if info.grant_id is None or info.member_id is None or info.patient_id is None:  # checked above
        raise InvalidGrantError("the refresh token has expired or been revoked")
    return issue_tokens(
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
    )


def narrowed(original: str, requested: str | None) -> str:
    """RFC 6749 §6 and SMART App Launch "Refresh": the new scope may leave out or narrow, never add.

    A requested scope is granted when the original holds it word for word, or (a resource scope) when a
    granted resource scope covers it: same context, the type or `*`, a superset of the permissions, and
    either no query or the same one."""
    if not requested:
        return original
    held = set(original.split())
    granted = [parsed for parsed in map(parse_resource_scope, held) if parsed is not None]
    kept: list[str] = []
    wider: list[str] = []
    for item in dict.fromkeys(requested.split()):
        if item in held:
            kept.append(item)
            continue
        wanted = parse_resource_scope(item)
        if wanted is not None and any(g.covers(wanted) for g in granted):
            kept.append(wanted.text)
        else:
            wider.append(item)
    if wider:
        raise InvalidScopeError("a refresh may not widen the scope: " + " ".join(wider))
    return " ".join(dict.fromkeys(kept))
