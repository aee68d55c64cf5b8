"""Engine settings the search engine depends on, and statements run on the driver."""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    bindparam,
    cast,
    func,
    literal,
    select,
    text,
)

from openpayer.db import PING_AFTER_IDLE, DriverStatement, insert_rows, make_engine, write_transaction


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


def test_a_driver_statement_returns_its_rows_with_its_defaults(database_url: str) -> None:
    """On PostgreSQL the statement runs on psycopg's cursor, compiled once; elsewhere through SQLAlchemy:
    the same rows either way, with a constant given at construction (a typed default) filled in."""
    statement = DriverStatement(
        select(
            bindparam("word", type_=String()).label("word"),
            bindparam("flag", value=True, type_=Boolean()).label("flag"),
            (bindparam("number", type_=BigInteger()) + 1).label("next"),
        )
    )
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            for n in range(3):  # compiled on first use, then reused
                [row] = statement.rows(conn, {"word": f"w{n}", "number": n})
                assert tuple(row) == (f"w{n}", True, n + 1)
    finally:
        engine.dispose()


def test_a_prepared_driver_statement_is_parsed_once_per_connection(database_url: str) -> None:
    """PostgreSQL keeps a `prepared` statement on the connection (the others are planned with their
    values every time); after a rollback forgets it, the next execution prepares it again."""
    keyed = DriverStatement(select((bindparam("n", type_=BigInteger()) + 1).label("keyed")), prepared=True)
    planned = DriverStatement(select((bindparam("n", type_=BigInteger()) + 2).label("planned")))
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            for n in range(3):
                assert [tuple(r) for r in keyed.rows(conn, {"n": n})] == [(n + 1,)]
                assert [tuple(r) for r in planned.rows(conn, {"n": n})] == [(n + 2,)]
            if not database_url.startswith("postgresql"):
                return
            listed = text("SELECT statement FROM pg_prepared_statements")
            [statement] = conn.execute(listed).scalars().all()
            assert "keyed" in statement  # the prepared one only, once
            conn.rollback()  # the connection was in a transaction: psycopg deallocates what it prepared
            assert conn.execute(listed).scalars().all() == []
            conn.rollback()
            assert [tuple(r) for r in keyed.rows(conn, {"n": 7})] == [(8,)]
            assert len(conn.execute(listed).scalars().all()) == 1
    finally:
        engine.dispose()


def test_a_driver_statement_refuses_a_parameter_that_needs_sqlalchemys_processing(database_url: str) -> None:
    """psycopg would receive the value as given: a JSON parameter (serialised by SQLAlchemy) is refused."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite runs driver statements through SQLAlchemy")
    statement = DriverStatement(select(bindparam("document", type_=JSON()).label("document")))
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn, pytest.raises(ValueError, match="document"):
            statement.rows(conn, {"document": {"a": 1}})
    finally:
        engine.dispose()


def test_a_driver_statement_renders_a_constant_in_list_once(database_url: str) -> None:
    """A constant IN list (as the search engine's allowed types) is part of the statement: it is rendered
    into the SQL when first compiled, and later calls give only the other values."""
    words = select(func.regexp_split_to_table(literal("a b c d"), " ").label("w")).subquery()
    statement = DriverStatement(
        select(words.c.w)
        .where(words.c.w.in_(["a", "b", "c"]), words.c.w != bindparam("v0"))
        .order_by(words.c.w)
    )
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            if not database_url.startswith("postgresql"):
                assert not statement.runs_on(conn, {"v0": "a"})  # SQLAlchemy runs it there
                return
            for skipped, expected in (("a", ["b", "c"]), ("c", ["a", "b"])):
                assert statement.runs_on(conn, {"v0": skipped})
                assert [w for (w,) in statement.rows(conn, {"v0": skipped})] == expected
            in_list = next(name for name in statement._fixed if name.startswith("w_"))
            assert not statement.runs_on(conn, {"v0": "a", in_list: ["d"]})  # the list cannot be given again
    finally:
        engine.dispose()


def test_a_driver_statement_declines_what_only_sqlalchemy_runs_right(database_url: str) -> None:
    """`runs_on` is False, so a caller goes through SQLAlchemy, for an IN list given per execution, for a
    numeric column (SQLAlchemy's result processing depends on it) and for a parameter it processes."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite runs driver statements through SQLAlchemy")
    per_call = DriverStatement(select(func.count()).where(func.abs(1).in_(bindparam("ids", expanding=True))))
    numeric = DriverStatement(
        select(cast(bindparam("n", type_=BigInteger()), Numeric(10, 2)).label("amount"))
    )
    flagged = DriverStatement(select(bindparam("flag", value=True, type_=Boolean()).label("flag")))
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            assert not per_call.runs_on(conn, {"ids": [1, 2]})
            assert per_call._refused is not None
            assert "IN list" in per_call._refused
            assert not numeric.runs_on(conn, {"n": 1})
            assert flagged.runs_on(conn, {})  # its processed parameter is a constant default
            assert not flagged.runs_on(conn, {"flag": False})
            assert conn.execute(per_call.statement, {"ids": [1, 2]}).scalar_one() == 1  # the fallback
    finally:
        engine.dispose()


def test_a_driver_statement_on_a_dropped_connection_invalidates_it(database_url: str) -> None:
    """As SQLAlchemy does for its own statements: the broken connection is not returned to the pool."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL pool setting")
    engine, other = make_engine(database_url), make_engine(database_url)
    statement = DriverStatement(select(func.pg_backend_pid()))
    try:
        with engine.connect() as conn:
            [(first,)] = statement.rows(conn, {})
            with other.connect() as killer:
                killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            with pytest.raises(psycopg.OperationalError):
                statement.rows(conn, {})
            assert conn.invalidated
        with engine.connect() as conn:  # checked out at once, not pinged: a new connection all the same
            [(second,)] = statement.rows(conn, {})
            assert second != first
    finally:
        engine.dispose()
        other.dispose()


def _rows_table() -> Table:
    return Table(
        "test_insert_rows",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("word", String(64), nullable=False),
        Column("n", BigInteger, nullable=True),
        Column("doc", JSON, nullable=True),
        Column("tag", String(8), nullable=True, default="dflt"),
    )


def test_inserted_rows_read_back_as_given_whichever_way_they_are_written(database_url: str) -> None:
    """COPY on PostgreSQL for plain rows (text that COPY must escape, keys in any order); SQLAlchemy's
    executemany for a JSON column or an omitted column with a Python default."""
    table = _rows_table()
    engine = make_engine(database_url)
    awkward = 'tab\there, newline\nthere, back\\slash, \\N, quote\' "é" ✓'
    try:
        table.metadata.create_all(engine)
        with write_transaction(engine) as conn:
            insert_rows(conn, table, [])
            insert_rows(
                conn, table, [{"word": awkward, "n": 1, "tag": None}, {"word": "b", "n": None, "tag": "t"}]
            )
            insert_rows(conn, table, [{"word": "json", "n": 3, "doc": {"a": [1, "x"]}, "tag": "j"}])
            insert_rows(conn, table, [{"word": "defaulted", "n": 4}])
            insert_rows(conn, table, [{"word": "k1", "n": 5, "tag": "k"}, {"word": "k2", "tag": "k", "n": 6}])
        with engine.connect() as conn:
            got = [
                tuple(r)
                for r in conn.execute(
                    select(table.c.word, table.c.n, table.c.doc, table.c.tag).order_by(table.c.id)
                )
            ]
        assert got == [
            (awkward, 1, None, None),
            ("b", None, None, "t"),
            ("json", 3, {"a": [1, "x"]}, "j"),
            ("defaulted", 4, None, "dflt"),
            ("k1", 5, None, "k"),
            ("k2", 6, None, "k"),
        ]
    finally:
        table.metadata.drop_all(engine)
        engine.dispose()


def test_plain_rows_go_by_copy_on_postgresql_and_a_failure_writes_none(database_url: str) -> None:
    """The server names the COPY in a failed row's error context; the rows before it are not kept."""
    if not database_url.startswith("postgresql"):
        pytest.skip("COPY is PostgreSQL's")
    table = _rows_table()
    engine = make_engine(database_url)
    try:
        table.metadata.create_all(engine)
        with pytest.raises(psycopg.errors.NotNullViolation) as failed, write_transaction(engine) as conn:
            insert_rows(conn, table, [{"word": "kept?", "tag": "x"}, {"word": None, "tag": "x"}])
        assert (failed.value.diag.context or "").startswith("COPY test_insert_rows, line 2")
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0
    finally:
        table.metadata.drop_all(engine)
        engine.dispose()
