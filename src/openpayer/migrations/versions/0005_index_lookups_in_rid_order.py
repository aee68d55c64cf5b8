"""index tables: (parameter, value) look-ups end with rid, so their rows come in search order

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 03:30:00

For an unselective criterion (`PractitionerRole?specialty=X`, 16,820 matches; `Observation?code=S|C`,
69,267) PostgreSQL answered `ORDER BY rid LIMIT n` by merging the type's rows with the whole index table in
rid order, filtering millions of rows (0.5-0.8 s). With rid as the last key of the value index, one value's
rows are already in rid order and the merge reads only them.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# (index, table, columns before, columns after, PostgreSQL INCLUDE after)
CHANGES: tuple[tuple[str, str, list[str], list[str], list[str]], ...] = (
    (
        "ix_fhir_idx_token_hkey_code",
        "fhir_idx_token",
        ["hkey", "code", "system"],
        ["hkey", "code", "rid"],
        ["system"],
    ),
    (
        "ix_fhir_idx_reference_hkey_target",
        "fhir_idx_reference",
        ["hkey", "target_id", "target_type"],
        ["hkey", "target_id", "target_type", "rid"],
        [],
    ),
    ("ix_fhir_idx_uri_hkey_value", "fhir_idx_uri", ["hkey", "value"], ["hkey", "value", "rid"], []),
)


def upgrade() -> None:
    for name, table, _before, after, include in CHANGES:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, after, unique=False, postgresql_include=include)


def downgrade() -> None:
    for name, table, before, _after, _include in CHANGES:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, before, unique=False)
