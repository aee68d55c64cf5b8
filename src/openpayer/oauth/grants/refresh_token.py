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

from openpayer.db import single_statement, write_transaction
from openpayer.oauth.clients import Authenticated, StaleClientError
from openpayer.oauth.errors import InvalidGrantError, InvalidRequestError, InvalidScopeError, OAuth2Error
from openpayer.oauth.grants.issue import Issued, issue_in, token_response
from openpayer.oauth.scopes import parse_resource_scope
from openpayer.security.audit import AuditEvent
from openpayer.security.events import EventKind, Outcome

if TYPE_CHECKING:
    from openpayer.oauth.service import AuthServer, Urls

REFRESH_REUSE_GRACE = 10  # seconds


def refresh(
    server: AuthServer, urls: Urls, authenticated: Authenticated, form: dict[str, str]
) -> dict[str, Any]:
    """One commit: the client's confirmation (and its assertion's `jti`), the token's rotation and the new
    tokens, in one transaction, or on PostgreSQL without an assertion in one statement after the reads. A
    refused request commits only what must outlive it (a `jti`, the revocation of a reused token's grant)
    and writes nothing else."""
    token = form.get("refresh_token")
    if not token:
        raise InvalidRequestError("refresh_token is required")
    client = authenticated.client
    now = server.clock.now()
    check = server.clients.unchanged_check(authenticated)
    error: OAuth2Error | None = None
    issued: Issued | None = None
    revoke_after: int | None = None  # the grant of a reused token, when it is revoked after the block
    # PostgreSQL, no assertion to record: the reads in autocommit and the writes as one statement (the
    # rotation with the new tokens), so one commit and two round trips instead of five.
    single = server.engine.dialect.name == "postgresql" and authenticated.jti is None
    with single_statement(server.engine) if single else write_transaction(server.engine) as conn:
        info = server.tokens.find(conn, urls.env, token, "refresh", client_check=check)
        own = info is not None and hmac.compare_digest(info.client_id, client.client_id)
        if info is not None and own and check is not None:
            if not info.client_current:  # the cached client changed: nothing written, ask again
                raise StaleClientError(client.client_id)
        elif info is not None:
            server.clients.confirm(conn, authenticated)  # the `jti`, or a cached client not joined above
        if info is None:
            error = InvalidGrantError("the refresh token is not valid")
        usable = (
            info is not None
            and info.active(now)
            and info.grant_id is not None
            and info.patient_id is not None
        )
        rotated_at = info.rotated_at if info is not None else None
        in_grace = rotated_at is not None and now - rotated_at <= REFRESH_REUSE_GRACE
        reused = rotated_at is not None and not (own and usable and in_grace)
        if info is not None and reused and info.grant_id is not None:
            if single:
                revoke_after = info.grant_id  # several statements: a transaction of their own
            else:
                server.grants.revoke_in(conn, info.grant_id)
        if info is not None and not reused:
            # Nothing is written before these checks: a refused request leaves the token as it was.
            if not own:
                error = InvalidGrantError("the refresh token is not valid")
            elif (
                not usable
                or info.grant_id is None
                or info.member_id is None
                or info.patient_id is None
                or info.grant_expires_at is None  # joined with the grant: set when it exists
            ):
                error = InvalidGrantError("the refresh token has expired or been revoked")
            else:
                try:
                    scope = narrowed(info.scope, form.get("scope"))
                except InvalidScopeError as refused:
                    error = refused
                else:
                    # A concurrent refresh may have consumed it since `find`: a rotation just now, in grace.
                    rotating = info.id if info.rotated_at is None else None
                    if rotating is not None and not single:
                        server.tokens.mark_rotated(conn, rotating)
                    issued = issue_in(
                        conn,
                        server,
                        urls,
                        client,
                        grant_id=info.grant_id,
                        grant_expires_at=info.grant_expires_at,
                        member_id=info.member_id,
                        patient_id=info.patient_id,
                        scope=scope,
                        nonce=None,
                        auth_time=info.issued_at,
                        code_digest=info.code_digest,
                        rotating=rotating if single else None,
                    )
    if revoke_after is not None:
        with write_transaction(server.engine) as conn:
            server.grants.revoke_in(conn, revoke_after)
    if info is not None and reused:
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
    if error is not None:
        raise error
    if issued is None:  # every path above sets one or the other
        raise InvalidGrantError("the refresh token is not valid")
    return token_response(server, urls, client, issued)


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
