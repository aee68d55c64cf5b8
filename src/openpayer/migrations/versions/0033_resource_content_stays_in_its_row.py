"""fhir_resource, fhir_history: the stored bytes stay in their row, uncompressed by PostgreSQL (PostgreSQL)

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-04 05:10:00

`content` is already Zstandard-compressed JSON (`fhir.storage.codec`). PostgreSQL's default for a bytea
column tried to compress it again with pglz whenever a row passed 2 KB (three in ten of the claims in
`benchmarks/bench_load.py`), failed, and moved it to the TOAST table: one more heap row and index entry per
write there, and one more index lookup per read. In a claims load this was 8 % of PostgreSQL's CPU; without
it the load ran 1-2 % faster (docs/performance.md, Loading, "Thirteenth session"). Now PostgreSQL never
compresses it (`EXTERNAL`) and keeps it in the row up to a page's size (`toast_tuple_target`); larger
resources still go to TOAST. Rows already stored stay as they are until they are written again.
"""

from __future__ import annotations

from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

TABLES = ("fhir_resource", "fhir_history")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN content SET STORAGE EXTERNAL")
        op.execute(f"ALTER TABLE {table} SET (toast_tuple_target = 8160)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (toast_tuple_target)")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN content SET STORAGE EXTENDED")
