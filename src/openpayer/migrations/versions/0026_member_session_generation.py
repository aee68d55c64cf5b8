"""member_account.session_generation: signing out ends the member's sessions on the server

Revision ID: 0026
Revises: 0021
Create Date: 2026-12-02 15:15:00

A member's session cookie is signed and carries the generation it was issued under; signing out (or a new
password) raises it, so a copied cookie stops working too, not only the one the browser deleted.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("member_account") as batch:
        batch.add_column(sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("member_account") as batch:
        batch.drop_column("session_generation")
