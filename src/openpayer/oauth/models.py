"""Tables of the authorization server. Every row belongs to one environment; secrets are stored as digests.

Timestamps are integer seconds since the Unix epoch (UTC). Codes, access and refresh tokens and client
secrets are kept only as SHA-256 digests (they are 256-bit random values, so a fast digest is enough).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from openpayer.db import BigId, metadata

oauth_client = Table(
    "oauth_client",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("env", String(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("developer", String(200), nullable=False, default=""),
    Column("privacy_policy_url", String(512), nullable=True),
    Column("redirect_uris", Text, nullable=False),  # JSON list, matched exactly
    Column("auth_method", String(32), nullable=False),  # none | client_secret | private_key_jwt
    Column("secret_digest", String(64), nullable=True),
    # After a rotation with overlap the previous secret keeps working until `previous_secret_expires_at`.
    Column("previous_secret_digest", String(64), nullable=True),
    Column("previous_secret_expires_at", BigInteger, nullable=True),
    Column("jwks", Text, nullable=True),
    Column("jwks_url", String(512), nullable=True),
    Column("scopes", Text, nullable=False, default=""),  # registered scopes (system/ for backend clients)
    Column("status", String(16), nullable=False, default="active"),  # active | suspended
    Column("created_at", BigInteger, nullable=False),
    Index("ix_oauth_client_env", "env"),
)

oauth_signing_key = Table(
    "oauth_signing_key",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("env", String(32), nullable=False),
    Column("alg", String(16), nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("private_enc", LargeBinary, nullable=False),  # AES-256-GCM(nonce || ciphertext)
    Column("created_at", BigInteger, nullable=False),
    Index("ix_oauth_signing_key_env_created_at", "env", "created_at"),
)

oauth_code = Table(
    "oauth_code",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("env", String(32), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("grant_id", BigInteger, nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("redirect_uri", String(512), nullable=False),
    Column("scope", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("nonce", String(255), nullable=True),
    Column("auth_time", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
)

oauth_token = Table(
    "oauth_token",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("env", String(32), nullable=False),
    Column("kind", String(8), nullable=False),  # access | refresh
    Column("client_id", String(64), nullable=False),
    Column("grant_id", BigInteger, nullable=True),  # consent grant; NULL for client_credentials
    Column("code_digest", String(64), nullable=True),  # the code it descends from (revoked on code reuse)
    Column("member_id", BigInteger, nullable=True),
    Column("patient_id", String(64), nullable=True),
    Column("scope", Text, nullable=False),
    Column("issued_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("rotated_at", BigInteger, nullable=True),  # refresh tokens: when exchanged for a new one
    Index("ix_oauth_token_grant_id", "grant_id"),
    Index("ix_oauth_token_code_digest", "code_digest"),
)

oauth_assertion_jti = Table(
    "oauth_assertion_jti",
    metadata,
    Column("env", String(32), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("jti", String(255), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    UniqueConstraint("env", "client_id", "jti"),
    Index("ix_oauth_assertion_jti_expires_at", "expires_at"),  # the purge of expired records
)

# Last activity of each client (SMART authorization; FHIR call with one of its tokens), for the inactivity
# policy. Written by `openpayer.oauth.activity.ActivityLog` in batches, never on the request itself.
oauth_activity = Table(
    "oauth_activity",
    metadata,
    Column("env", String(32), primary_key=True),
    Column("client_id", String(64), primary_key=True),
    Column("last_authorized_at", BigInteger, nullable=True),  # authorization-code or client-credentials grant
    Column("last_call_at", BigInteger, nullable=True),  # any request with a valid access token (to a minute)
)

# One row (id 1): a counter raised in the transaction of every client status change (suspension, restore,
# removal). Each serving process reads it at most every `auth_revocation_poll_seconds` and drops its cached
# token checks and clients when it moved (`openpayer.oauth.revocation`); Redis pub/sub, when configured,
# tells them at once. TRUNCATE empties it in tests: the first raise inserts it again.
oauth_revocation = Table(
    "oauth_revocation",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("generation", BigInteger, nullable=False),
    Column("changed_at", BigInteger, nullable=False),
)
