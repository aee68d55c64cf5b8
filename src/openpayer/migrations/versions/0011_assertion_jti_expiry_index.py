"""oauth_assertion_jti: an index on expires_at for the purge of expired records

Revision ID: 0011
Revises: 0008b
Create Date: 2026-12-02 08:00:00

The token endpoint deleted expired `jti` records in every client-credentials request, scanning the table
(which holds every assertion of the last five minutes). The replay check is now an upsert on the unique
key, and the periodic purge (`oauth.cleanup`) finds expired records through this index.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0008b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_oauth_assertion_jti_expires_at", "oauth_assertion_jti", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_oauth_assertion_jti_expires_at", table_name="oauth_assertion_jti")
