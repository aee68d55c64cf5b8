"""search planning: an (env, type, rid) index covering id and deleted; PostgreSQL statistics on index values

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 02:55:00

The index serves the default search order (rid within a type). The statistics tell PostgreSQL how many rows
a (search parameter, value) pair has: a parameter's values only occur under its own hash, which the default
per-column statistics, multiplied as if independent, underestimate by orders of magnitude (a specialty with
6,160 roles was estimated at 57, and a chained search started from the specialty instead of the ZIP code).
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# (table, value column): extended statistics on (hkey, column) and a larger sample for the column.
VALUE_STATISTICS = (
    ("fhir_idx_token", "code"),
    ("fhir_idx_string", "value_norm"),
    ("fhir_idx_uri", "value"),
)
STATISTICS_TARGET = 1000


def upgrade() -> None:
    op.create_index(
        "ix_fhir_resource_env_type_rid",
        "fhir_resource",
        ["env", "type", "rid"],
        unique=False,
        postgresql_include=["id", "deleted"],
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in VALUE_STATISTICS:
        name = f"st_{table}_hkey_{column}"
        op.execute(f"CREATE STATISTICS {name} (mcv, dependencies) ON hkey, {column} FROM {table}")
        op.execute(f"ALTER STATISTICS {name} SET STATISTICS {STATISTICS_TARGET}")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STATISTICS {STATISTICS_TARGET}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column in VALUE_STATISTICS:
            op.execute(f"DROP STATISTICS IF EXISTS st_{table}_hkey_{column}")
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STATISTICS -1")
    op.drop_index("ix_fhir_resource_env_type_rid", table_name="fhir_resource")
