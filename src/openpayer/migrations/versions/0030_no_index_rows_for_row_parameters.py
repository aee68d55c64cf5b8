"""the search index no longer keeps `_id` and `_lastUpdated` rows: searches read them from the resource row

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-03 09:40:00

`_id` and `_lastUpdated` have always been searched on `fhir_resource.id` and `last_updated` (search/params.py
`_lookup`), but every write also stored a token row and a date row for them: two of the ~19 index rows of an
ExplanationOfBenefit and a larger share of a small directory resource, each with its b-tree entries. New
writes leave them out (`extract.ROW_PARAMETERS`); this deletes the ones already stored, so the index holds
exactly what a fresh extraction gives. The downgrade does not put them back: no version reads them.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

ROWS = (("fhir_idx_token", "_id"), ("fhir_idx_date", "_lastUpdated"))
CHUNK = 500


def _index_key(env: str, resource_type: str, param: str) -> int:
    """`fhir.storage.tables.index_key` as of this migration (a migration keeps its own copy)."""
    digest = hashlib.blake2b(f"{env}|{resource_type}|{param}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def upgrade() -> None:
    bind = op.get_bind()
    pairs = bind.execute(sa.text("SELECT DISTINCT env, type FROM fhir_resource")).all()
    for name, param in ROWS:
        table = sa.table(name, sa.column("hkey"))
        keys = [_index_key(env, rtype, param) for env, rtype in pairs]
        for start in range(0, len(keys), CHUNK):
            bind.execute(sa.delete(table).where(table.c.hkey.in_(keys[start : start + CHUNK])))


def downgrade() -> None:
    pass
