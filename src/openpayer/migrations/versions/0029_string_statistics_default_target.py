"""fhir_idx_string: string values at the default statistics target (a prefix search plans 0.9 ms faster)

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-03 09:30:00

Migration 0003 gave `fhir_idx_string.value_norm` and its `(hkey, value_norm)` extended statistics a target of
1,000. PostgreSQL estimates a prefix (`LIKE 'mar%'`) by running the pattern over every most-common value and
histogram bound of both, decompressing them first, once per candidate path: on the directory store (1.1 M
resources) that was 0.9 ms of planning for `Practitioner?name=her` (1.1 ms in all) and for the ZIP step of
`PractitionerRole?location.address-postalcode=...`. With the default target (100) the same 250 directory
searches kept their plans and their results, and planned in 0.2–0.3 ms and 1.4–1.8 ms (docs/performance.md,
Search). The token statistics keep 1,000: the specialty estimates that choose where a chain starts need them,
and their planning cost did not move with the target. PostgreSQL only; ANALYZE so the change applies now.
"""

from __future__ import annotations

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

STATISTICS = "st_fhir_idx_string_hkey_value_norm"
TABLE = "fhir_idx_string"
COLUMN = "value_norm"


def _target(target: int) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER STATISTICS {STATISTICS} SET STATISTICS {target}")
    op.execute(f"ALTER TABLE {TABLE} ALTER COLUMN {COLUMN} SET STATISTICS {target}")
    op.execute(f"ANALYZE {TABLE}")


def upgrade() -> None:
    _target(-1)  # the server's default_statistics_target


def downgrade() -> None:
    _target(1000)
