"""fhir_resource: an (env, type, rid) index covering id and deleted, for the default search order

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 02:55:00
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_fhir_resource_env_type_rid",
        "fhir_resource",
        ["env", "type", "rid"],
        unique=False,
        postgresql_include=["id", "deleted"],
    )


def downgrade() -> None:
    op.drop_index("ix_fhir_resource_env_type_rid", table_name="fhir_resource")
