"""portal_monitoring_account: an organization's member account for health checks, per application and env

Revision ID: 0025
Revises: 0020
Create Date: 2026-12-02 11:30:00

A monitoring account is a member account bound to an empty synthetic Patient (docs/policy.md, "Monitoring
accounts"); this table says which member accounts are monitoring accounts, and whose.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_monitoring_account",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("application_id", sa.BigInteger(), nullable=False),
        sa.Column("env", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["portal_application.id"],
            name=op.f("fk_portal_monitoring_account_application_id_portal_application"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_monitoring_account")),
        sa.UniqueConstraint(
            "application_id", "env", name=op.f("uq_portal_monitoring_account_application_id_env")
        ),
    )
    op.create_index("ix_portal_monitoring_account_env", "portal_monitoring_account", ["env"])


def downgrade() -> None:
    op.drop_index("ix_portal_monitoring_account_env", table_name="portal_monitoring_account")
    op.drop_table("portal_monitoring_account")
