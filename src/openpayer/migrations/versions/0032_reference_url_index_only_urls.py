"""fhir_idx_reference: the (hkey, url) index holds only the rows that have a URL

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-04 05:30:00

A local reference (`Patient/123`) is stored with its type and id and no URL; only absolute and canonical
references carry one. The index every search by URL reads held a NULL entry for each local reference all
the same: 102,000 of 102,000 rows in the claims load of `benchmarks/bench_load.py`, one B-tree insertion in
five of a reference row's. Every query that reads it tests `url = ...`, which implies `url IS NOT NULL`, so
PostgreSQL and SQLite both still choose the partial index (docs/performance.md, Loading, "Thirteenth
session").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

TABLE = "fhir_idx_reference"
INDEX = "ix_fhir_idx_reference_hkey_url"


def upgrade() -> None:
    op.drop_index(INDEX, table_name=TABLE)
    only_urls = sa.text("url IS NOT NULL")
    op.create_index(INDEX, TABLE, ["hkey", "url"], postgresql_where=only_urls, sqlite_where=only_urls)


def downgrade() -> None:
    op.drop_index(INDEX, table_name=TABLE)
    op.create_index(INDEX, TABLE, ["hkey", "url"])
