"""incidents: at-risk flags, incidents and their timeline, breach alerts; the OAuth revocation counter

Revision ID: 0021
Revises: 0023
Create Date: 2026-12-02 11:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0023"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "oauth_revocation",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "risk_flag",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.BigInteger(), nullable=False),
        sa.Column("env", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("open_key", sa.String(length=64), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("raised_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("cleared_at", sa.BigInteger(), nullable=True),
        sa.Column("cleared_by", sa.BigInteger(), nullable=True),
        sa.Column("clear_note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("open_key"),
    )
    op.create_index("ix_risk_flag_subscription_id", "risk_flag", ["subscription_id"])
    op.create_table(
        "incident",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("owner_account_id", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_incident_status", "incident", ["status"])
    op.create_table(
        "incident_link",
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.BigInteger(), nullable=False),
        sa.Column("linked_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "kind", "target_id"),
    )
    op.create_index("ix_incident_link_target", "incident_link", ["kind", "target_id"])
    op.create_table(
        "incident_event",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("actor_account_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_incident_event_incident_id", "incident_event", ["incident_id"])
    op.create_table(
        "breach_delivery",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("signature", sa.String(length=200), nullable=True),
        sa.Column("timestamp", sa.String(length=32), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("alert_id", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_breach_delivery_outcome", "breach_delivery", ["outcome"])
    op.create_table(
        "breach_alert",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.String(length=128), nullable=False),
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("organization_name", sa.String(length=200), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("invite_url", sa.String(length=1000), nullable=False),
        sa.Column("detected_at", sa.String(length=40), nullable=True),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=True),
        sa.Column("matched_at", sa.BigInteger(), nullable=True),
        sa.Column("matched_by", sa.BigInteger(), nullable=True),
        sa.Column("incident_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alert_id"),
    )
    op.create_index("ix_breach_alert_status", "breach_alert", ["status"])


def downgrade() -> None:
    op.drop_index("ix_breach_alert_status", table_name="breach_alert")
    op.drop_table("breach_alert")
    op.drop_index("ix_breach_delivery_outcome", table_name="breach_delivery")
    op.drop_table("breach_delivery")
    op.drop_index("ix_incident_event_incident_id", table_name="incident_event")
    op.drop_table("incident_event")
    op.drop_index("ix_incident_link_target", table_name="incident_link")
    op.drop_table("incident_link")
    op.drop_index("ix_incident_status", table_name="incident")
    op.drop_table("incident")
    op.drop_index("ix_risk_flag_subscription_id", table_name="risk_flag")
    op.drop_table("risk_flag")
    op.drop_table("oauth_revocation")
