"""Removing what has expired: authorization codes, access and refresh tokens, and client-assertion jtis.

Codes and tokens are kept for a day past their expiry, so that a replayed code or a rotated refresh token
presented shortly after it lapsed is still recognised (and its descendants revoked) rather than merely
unknown; jti rows only guard replay until the assertion itself expires, so they go at once.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete

from openpayer.db import write_transaction
from openpayer.oauth.models import oauth_assertion_jti, oauth_code, oauth_token

GRACE_SECONDS = 86400


def purge_expired(engine: Engine, now: int) -> str:
    """Delete expired rows; returns what was removed, for the job's run record."""
    with write_transaction(engine) as conn:
        codes = conn.execute(delete(oauth_code).where(oauth_code.c.expires_at < now - GRACE_SECONDS)).rowcount
        tokens = conn.execute(
            delete(oauth_token).where(oauth_token.c.expires_at < now - GRACE_SECONDS)
        ).rowcount
        jtis = conn.execute(
            delete(oauth_assertion_jti).where(oauth_assertion_jti.c.expires_at < now)
        ).rowcount
    return f"removed {codes} codes, {tokens} tokens, {jtis} assertion ids"
