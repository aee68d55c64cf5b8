"""portal: developer and staff accounts

Revision ID: 0008b
Revises: 0013b
Create Date: 2026-12-02 08:10:00

The accounts that sign in to the developer portal and the staff console (openpayer.portal.people).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008b"
down_revision = "0013b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_account",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("email_verified_at", sa.BigInteger(), nullable=True),
        sa.Column("totp_secret", sa.Text(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_sign_in_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_account")),
        sa.UniqueConstraint("email", name=op.f("uq_portal_account_email")),
    )


def downgrade() -> None:
    op.drop_table("portal_account")
