"""security: the security event stream and the detectors' findings

Revision ID: 0020
Revises: 0011
Create Date: 2026-12-02 11:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0011"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "security_event",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("env", sa.String(length=32), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("account", sa.String(length=64), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("detail", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_event")),
    )
    op.create_index("ix_security_event_kind_at", "security_event", ["kind", "at"])
    op.create_index("ix_security_event_address_at", "security_event", ["address", "at"])
    op.create_index("ix_security_event_client_id_at", "security_event", ["client_id", "at"])
    op.create_index("ix_security_event_at", "security_event", ["at"])
    op.create_table(
        "security_detection",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("env", sa.String(length=32), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("window_end", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("dedupe", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_detection")),
        sa.UniqueConstraint("dedupe", name=op.f("uq_security_detection_dedupe")),
    )
    op.create_index("ix_security_detection_at", "security_detection", ["at"])
    op.create_index("ix_security_detection_client_id", "security_detection", ["env", "client_id"])


def downgrade() -> None:
    op.drop_index("ix_security_detection_client_id", table_name="security_detection")
    op.drop_index("ix_security_detection_at", table_name="security_detection")
    op.drop_table("security_detection")
    op.drop_index("ix_security_event_at", table_name="security_event")
    op.drop_index("ix_security_event_client_id_at", table_name="security_event")
    op.drop_index("ix_security_event_address_at", table_name="security_event")
    op.drop_index("ix_security_event_kind_at", table_name="security_event")
    op.drop_table("security_event")
