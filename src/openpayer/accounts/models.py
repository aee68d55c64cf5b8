"""Tables of the accounts domain: the developer and staff accounts that sign in to `/portal/` and `/admin/`,
their password-reset links and their recovery codes (digests only).

(Members' accounts are `openpayer.members.models`: a member is a login tied to one Patient per environment.)
The table keeps its first name, `portal_account`, from when the portal held it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from openpayer.db import BigId, metadata

portal_account = Table(
    "portal_account",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False, unique=True),  # lower-cased; the sign-in name
    Column("password_hash", String(255), nullable=False),  # argon2id
    Column("email_verified_at", BigInteger, nullable=True),
    Column("totp_secret", Text, nullable=True),  # sealed (AES-GCM, hex); NULL until enrolled and confirmed
    Column("disabled", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_sign_in_at", BigInteger, nullable=True),
    # In every session cookie; raising it (password reset, "sign out everywhere") ends all the sessions.
    Column("session_generation", Integer, nullable=False, server_default="0"),
)

account_password_reset = Table(
    "account_password_reset",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, ForeignKey("portal_account.id", ondelete="CASCADE"), nullable=False),
    Column("token_digest", String(64), nullable=False, unique=True),  # SHA-256 of a 256-bit token
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    Index("ix_account_password_reset_account_id", "account_id"),
)

# Single-use recovery codes of two-step sign-in (accounts/recovery_codes.py): a keyed HMAC-SHA-256 of each
# code (bound to the account), never the code. A new set deletes the old one; a used code keeps its row.
account_recovery_code = Table(
    "account_recovery_code",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, ForeignKey("portal_account.id", ondelete="CASCADE"), nullable=False),
    Column("code_digest", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    Index("ix_account_recovery_code_account_id", "account_id"),
)
