"""index values: extended statistics of the most common (parameter, value) pairs only, without dependencies

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-05 05:00:00

Migration 0003 built `(mcv, dependencies)` statistics on `(hkey, value)` of the token, string and uri index
tables. PostgreSQL estimates a clause list with an extended MCV list first and applies functional
dependencies only to the clauses still left (`statext_clauselist_selectivity`); the MCV list covers both
columns of every `hkey = ? AND value ...` a search writes, so the dependencies were never used: with a
sample of the whole table, 360 token clauses had the same estimates with and without them. Computing them
was a third of `ANALYZE fhir_idx_token` on a claims load's 100,000 rows (0.31 → 0.22 s) and a fifth on the
directory store's 8 million (2.1–2.2 → 1.7 s): the longest step of the maintenance that ends every load
(docs/performance.md, Loading, "Twenty-third session"). The same names, targets and MCV lists; PostgreSQL
only. ANALYZE so that the new objects hold their statistics at once.
"""

from __future__ import annotations

from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None

# (table, value column, statistics target as migrations 0003 and 0029 left it)
VALUE_STATISTICS = (
    ("fhir_idx_token", "code", 1000),
    ("fhir_idx_string", "value_norm", -1),
    ("fhir_idx_uri", "value", 1000),
)


def _recreate(kinds: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, target in VALUE_STATISTICS:
        name = f"st_{table}_hkey_{column}"
        op.execute(f"DROP STATISTICS IF EXISTS {name}")
        op.execute(f"CREATE STATISTICS {name} ({kinds}) ON hkey, {column} FROM {table}")
        op.execute(f"ALTER STATISTICS {name} SET STATISTICS {target}")
        op.execute(f"ANALYZE {table}")


def upgrade() -> None:
    _recreate("mcv")


def downgrade() -> None:
    _recreate("mcv, dependencies")
