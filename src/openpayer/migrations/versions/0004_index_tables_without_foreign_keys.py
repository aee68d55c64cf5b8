"""index tables: no foreign key from the index rows to fhir_resource

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 03:05:00

Index rows are derived data, written and deleted only with their resource's current version, and resource
rows are never deleted; the per-row check cost PostgreSQL a third of its CPU during bulk loads.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEX_TABLES = ("date", "number", "quantity", "reference", "special", "string", "token", "uri")


def upgrade() -> None:
    for kind in INDEX_TABLES:
        with op.batch_alter_table(f"fhir_idx_{kind}") as batch:  # SQLite rebuilds the table
            batch.drop_constraint(f"fk_fhir_idx_{kind}_rid_fhir_resource", type_="foreignkey")


def downgrade() -> None:
    for kind in INDEX_TABLES:
        with op.batch_alter_table(f"fhir_idx_{kind}") as batch:
            batch.create_foreign_key(
                f"fk_fhir_idx_{kind}_rid_fhir_resource", "fhir_resource", ["rid"], ["rid"], ondelete="CASCADE"
            )
