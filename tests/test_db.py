"""Engine settings the search engine depends on."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from openpayer.db import make_engine


def test_postgresql_plans_every_search_with_its_parameter_values(database_url: str) -> None:
    """Generic plans (chosen once psycopg prepares a statement) ignore the values a search filters on."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL setting")
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            for n in range(10):
                conn.execute(text("SELECT count(*) FROM fhir_resource WHERE env = :env"), {"env": f"e{n}"})
            prepared = conn.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one()
            assert prepared == 0
            assert conn.execute(text("SHOW plan_cache_mode")).scalar_one() == "auto"  # FK checks keep theirs
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("an SQLite setting")
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one().lower() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
    finally:
        engine.dispose()
