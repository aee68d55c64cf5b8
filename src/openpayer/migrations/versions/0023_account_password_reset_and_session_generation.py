"""accounts: password reset links (digests only) and a session generation per developer/staff account

Revision ID: 0023
Revises: 0025
Create Date: 2026-12-02 11:30:00

`account_password_reset` keeps the SHA-256 digest of each emailed reset token (never the token), when it
expires and when it was used: a link works once, within its lifetime. `portal_account.session_generation`
is carried in each session cookie; raising it (a password reset, "sign out everywhere") ends every session
of the account at once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "portal_account",
        sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "account_password_reset",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["portal_account.id"],
            name=op.f("fk_account_password_reset_account_id_portal_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_password_reset")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_account_password_reset_token_digest")),
    )
    op.create_index("ix_account_password_reset_account_id", "account_password_reset", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_account_password_reset_account_id", table_name="account_password_reset")
    op.drop_table("account_password_reset")
    with op.batch_alter_table("portal_account") as batch:
        batch.drop_column("session_generation")
