"""Member accounts (a login linked to a Patient) and consent grants (member, app, scopes, time, expiry)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text, UniqueConstraint

from openpayer.db import BigId, metadata

member_account = Table(
    "member_account",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("env", String(32), nullable=False),
    Column("username", String(150), nullable=False),
    Column("password_hash", String(255), nullable=False),  # argon2id
    Column("patient_id", String(64), nullable=False),
    Column("totp_secret", Text, nullable=True),  # encrypted; NULL when no second factor is enrolled
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
    # Raised by signing out and by a new password: a session cookie of an older generation has ended.
    Column("session_generation", Integer, nullable=False, server_default="0"),
    UniqueConstraint("env", "username"),
)

consent_grant = Table(
    "consent_grant",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("env", String(32), nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("scope", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Index("ix_consent_grant_member_id", "member_id"),
)
