"""Authorization code grant (RFC 6749 §4.1.3; RFC 7636 PKCE; RFC 9700 §4.2.4, §2.1.1).

Codes are 256-bit random values kept as digests, valid `auth_code_lifetime` seconds (60) and single use:
presenting a used code fails with `invalid_grant` and revokes every token issued from it and its grant. A code
is spent by any attempt, a failed one too; presenting it again then says so, rather than "already used".
The verifier must hash (S256) to the challenge for every client; `plain` was refused at authorization.
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy import Connection, select, update

from openpayer.db import write_transaction
from openpayer.oauth.clients import Client
from openpayer.oauth.errors import InvalidGrantError, InvalidRequestError
from openpayer.oauth.grants.issue import issue_tokens
from openpayer.oauth.models import oauth_code
from openpayer.oauth.tokens import token_digest
from openpayer.security.audit import AuditEvent
from openpayer.security.events import EventKind, Outcome

if TYPE_CHECKING:
    from openpayer.members.accounts import Member
    from openpayer.oauth.service import AuthServer, Urls

_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def create_code(
    conn: Connection,
    server: AuthServer,
    *,
    env: str,
    client: Client,
    grant_id: int,
    member: Member,
    redirect_uri: str,
    scope: str,
    code_challenge: str,
    nonce: str | None,
    auth_time: int,
) -> str:
    code = secrets.token_urlsafe(32)
    now = server.clock.now()
    conn.execute(
        oauth_code.insert().values(
            digest=token_digest(code),
            env=env,
            client_id=client.client_id,
            grant_id=grant_id,
            member_id=member.id,
            patient_id=member.patient_id,
            redirect_uri=redirect_uri,
            scope=scope,
            code_challenge=code_challenge,
            nonce=nonce,
            auth_time=auth_time,
            expires_at=now + server.settings.auth_code_lifetime,
        )
    )
    return code


def exchange(server: AuthServer, urls: Urls, client: Client, form: dict[str, str]) -> dict[str, Any]:
    """Redeem a code for tokens (RFC 6749 §4.1.3–4.1.4)."""
    code = form.get("code")
    if not code:
        raise InvalidRequestError("code is required")
    digest = token_digest(code)
    now = server.clock.now()
    with write_transaction(server.engine) as conn:
        row = conn.execute(
            select(oauth_code).where(oauth_code.c.digest == digest, oauth_code.c.env == urls.env)
        ).first()
        if row is None:
            raise InvalidGrantError("the authorization code is not valid")
        # Consume first, so a code is burnt by any attempt, right or wrong (single use).
        consumed = conn.execute(
            update(oauth_code)
            .where(oauth_code.c.digest == digest, oauth_code.c.used_at.is_(None))
            .values(used_at=now)
        ).rowcount
        reused = not consumed
        redeemed = False
        if reused:
            redeemed = server.tokens.issued_from_code(conn, digest)
            server.tokens.revoke_code_family(conn, digest, row.grant_id)
            if row.grant_id is not None:
                server.grants.revoke_in(conn, row.grant_id)  # and, through it, every token of the grant
    if reused:
        server.security.record(
            EventKind.CODE_REUSE, Outcome.REFUSED, env=urls.env, client_id=row.client_id, status=400
        )
        server.audit.record(
            urls.env,
            AuditEvent.CODE_REUSE,
            400,
            client_id=row.client_id,
            member_id=row.member_id,
            patient_id=row.patient_id,
        )
        if not redeemed:
            # The earlier attempt failed (wrong redirect_uri or verifier, another client) and spent the code.
            raise InvalidGrantError(
                "the authorization code was spent by an earlier token request that failed (a code is single "
                "use, whatever the outcome); authorize again"
            )
        raise InvalidGrantError("the authorization code was already used; its tokens are revoked")
    if row.expires_at <= now:
        raise InvalidGrantError("the authorization code has expired")
    if row.client_id != client.client_id:
        raise InvalidGrantError("the authorization code was issued to another client")
    if form.get("redirect_uri") != row.redirect_uri:
        raise InvalidGrantError(
            "redirect_uri does not match the authorization request; the code is now spent, authorize again"
        )
    verifier = form.get("code_verifier") or ""
    if not _VERIFIER.match(verifier):
        raise InvalidGrantError("code_verifier is missing or malformed (RFC 7636 section 4.1)")
    if not hmac.compare_digest(create_s256_code_challenge(verifier), row.code_challenge):
        raise InvalidGrantError("code_verifier does not match the code_challenge")
    body = issue_tokens(
        server,
        urls,
        client,
        grant_id=row.grant_id,
        member_id=row.member_id,
        patient_id=row.patient_id,
        scope=row.scope,
        nonce=row.nonce,
        auth_time=row.auth_time,
        code_digest=digest,
    )
    server.activity.authorized(urls.env, client.client_id)  # for the inactivity policy (oauth/activity.py)
    return body
