"""accounts: single-use recovery codes of two-step sign-in (keyed digests only)

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-02 22:45:00

`account_recovery_code` keeps a keyed HMAC-SHA-256 of each recovery code of a developer or staff account
(bound to the account; never the code), when the set was made and when each code was used: a code works
once, and a new set deletes the old one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_recovery_code",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("code_digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["portal_account.id"],
            name=op.f("fk_account_recovery_code_account_id_portal_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_recovery_code")),
        sa.UniqueConstraint("code_digest", name=op.f("uq_account_recovery_code_code_digest")),
    )
    op.create_index("ix_account_recovery_code_account_id", "account_recovery_code", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_account_recovery_code_account_id", table_name="account_recovery_code")
    op.drop_table("account_recovery_code")
