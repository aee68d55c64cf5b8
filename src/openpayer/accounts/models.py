"""Tables of the accounts domain: the developer and staff accounts that sign in to `/portal/` and `/admin/`.

(Members' accounts are `openpayer.members.models`: a member is a login tied to one Patient per environment.)
The table keeps its first name, `portal_account`, from when the portal held it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, String, Table, Text

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
)
