"""The statements an engine's connections send, and the transactions they make, observed at the driver.

Some statements of a hot path go to psycopg directly (`openpayer.db.DriverStatement`), past SQLAlchemy's
execution events; on PostgreSQL the log therefore records at the driver, through psycopg's public
`cursor_factory`, every statement of a connection checked out of the engine's pool while it is open. SQLite
runs everything through SQLAlchemy, whose `after_cursor_execute` event records it. Commits and rollbacks
are SQLAlchemy's events on both; a statement on a connection in autocommit is a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event


class StatementLog:
    def __init__(self) -> None:
        self.statements: list[tuple[str, bool]] = []  # (SQL, on a connection in autocommit), in order
        self.transactions: list[list[str]] = []  # the statements of each committed transaction, in order
        self._open: dict[int, list[str]] = {}

    def executed(self, connection: int, statement: str, autocommit: bool) -> None:
        self.statements.append((statement, autocommit))
        if autocommit:
            self.transactions.append([statement])
        else:
            self._open.setdefault(connection, []).append(statement)

    def ended(self, connection: int, committed: bool) -> None:
        statements = self._open.pop(connection, [])
        if committed:
            self.transactions.append(statements)


def _driver_key(conn: Connection) -> int:
    return id(conn.connection.driver_connection)


@contextmanager
def statement_log(engine: Engine) -> Iterator[StatementLog]:
    log = StatementLog()
    listeners: list[tuple[str, Callable[..., Any]]] = [
        ("commit", lambda conn: log.ended(_driver_key(conn), committed=True)),
        ("rollback", lambda conn: log.ended(_driver_key(conn), committed=False)),
    ]
    if engine.dialect.name == "postgresql":
        import psycopg

        class Recording(psycopg.Cursor[Any]):
            def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
                log.executed(id(self.connection), _sql(query), self.connection.autocommit)
                return super().execute(query, params, **kwargs)

            def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
                log.executed(id(self.connection), _sql(query), self.connection.autocommit)
                super().executemany(query, params_seq, **kwargs)

        def checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            dbapi_connection.cursor_factory = Recording

        def checkin(dbapi_connection: Any, _record: Any) -> None:
            if dbapi_connection is not None:
                dbapi_connection.cursor_factory = psycopg.Cursor

        listeners += [("checkout", checkout), ("checkin", checkin)]
    else:

        def executed(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
            autocommit = conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
            log.executed(_driver_key(conn), statement, autocommit)

        listeners.append(("after_cursor_execute", executed))
    for name, listener in listeners:
        event.listen(engine, name, listener)
    try:
        yield log
    finally:
        for name, listener in listeners:
            event.remove(engine, name, listener)


def _sql(query: Any) -> str:
    return query if isinstance(query, str) else query.decode() if isinstance(query, bytes) else str(query)
