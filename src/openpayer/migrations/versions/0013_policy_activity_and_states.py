"""oauth activity: last authorization and last call per client (for the inactivity policy)

Revision ID: 0013
Revises: 0006
Create Date: 2026-12-02 08:40:00

oauth_activity keeps, per (env, client_id), when the client last obtained a token by the
authorization-code or client-credentials grant and when it last called the FHIR API with one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_activity",
        sa.Column("env", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("last_authorized_at", sa.BigInteger(), nullable=True),
        sa.Column("last_call_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("env", "client_id"),
    )


def downgrade() -> None:
    op.drop_table("oauth_activity")
