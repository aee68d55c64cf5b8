"""Engine settings the search engine depends on."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from openpayer.db import PING_AFTER_IDLE, make_engine


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


def test_postgresql_replaces_a_rested_connection_the_server_dropped(database_url: str) -> None:
    """The pool pings only connections that rested `PING_AFTER_IDLE` (not every checkout, which cost a
    round trip per request); a rested connection that the server dropped is replaced before use."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL pool setting")
    engine, other = make_engine(database_url), make_engine(database_url)
    try:
        with engine.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as conn:  # checked out again at once: not pinged, the same connection
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == first
        with other.connect() as conn:  # the server drops it, as a restart would
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        time.sleep(PING_AFTER_IDLE + 0.1)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != first
    finally:
        engine.dispose()
        other.dispose()
