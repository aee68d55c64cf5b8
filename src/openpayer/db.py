"""Database engine and the SQLite/PostgreSQL differences, in one place.

SQLite runs in WAL mode with `BEGIN IMMEDIATE` for write transactions, so that concurrent writers queue
on the database lock instead of failing half-way with SQLITE_BUSY. PostgreSQL uses row locks
(`SELECT ... FOR UPDATE`) taken by the storage layer.
"""

from __future__ import annotations

import asyncio
import functools
import operator
import os
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Integer,
    MetaData,
    Numeric,
    Table,
    create_engine,
    event,
    exc,
    make_url,
)
from sqlalchemy.util.concurrency import await_, greenlet_spawn, in_greenlet

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Surrogate keys: SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT identities.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def make_engine(url: str, *, echo: bool = False) -> Engine:
    # hide_parameters: an error's message (and the echo log) never carries bound values, which are member
    # data (patient ids, member numbers searched).
    if url.startswith("sqlite"):
        prepare_sqlite_file(url)
        # As many pooled connections as the server's worker threads use at once: an overflow connection is
        # closed on return, and reopening one (with its PRAGMAs) on every request costs more than the read.
        engine = create_engine(
            url,
            echo=echo,
            hide_parameters=True,
            pool_size=20,
            max_overflow=20,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        _configure_sqlite(engine)
        return engine
    # psycopg prepares a statement after 5 executions and PostgreSQL may then switch to a generic plan,
    # chosen without the parameter values; for search (selectivity depends on hkey/code/patient) that plan
    # can be 20x slower (measured: 14 ms -> 260 ms on Observation?patient&category&date). So statements
    # are never prepared: each is planned with its values. (`plan_cache_mode=force_custom_plan` would do
    # the same but also re-plan every foreign-key check inside PostgreSQL, doubling the cost of writes.)
    engine = create_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_size=10,
        max_overflow=20,
        connect_args={"prepare_threshold": None},
    )
    _ping_when_idle(engine)
    _connect_cooperatively(engine)
    return engine


@functools.cache
def cooperative_connection_class() -> Any:
    """A psycopg connection class whose waits for the server, in code that `web.threads.run_cooperative`
    runs (a greenlet on the event loop), let the loop serve other requests meanwhile; elsewhere (a thread,
    a CLI) it waits as psycopg does. The token endpoint's grants run so: the hand-off of a request to a
    thread and back cost a fifth of a grant's CPU (docs/performance.md, Token endpoint). Built on first use,
    so that SQLite deployments do not import psycopg."""
    import psycopg
    from psycopg import waiting

    class CooperativeConnection(psycopg.Connection[Any]):
        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            if in_greenlet():
                # Most of a grant's waits have nothing to wait for (autocommit switched on and off, the
                # pool's rollback of an idle connection): finished here, without a round trip through
                # the event loop (two greenlet switches and a coroutine each).
                try:
                    state = next(gen)
                except StopIteration as finished:
                    return finished.value
                resumed = _resumed(gen, state)
                return await_(
                    waiting.wait_async(resumed, self.pgconn.socket, interval=interval, timeout=timeout)
                )
            return super().wait(gen, interval, timeout)

    return CooperativeConnection


def _resumed(gen: Any, first: Any) -> Any:
    """`gen`, already advanced to the value `first`, as a generator that yields `first` again and then
    carries on with `gen` (psycopg's `wait_async` starts a generator itself)."""
    state = first
    while True:
        ready = yield state
        try:
            state = gen.send(ready)
        except StopIteration as finished:
            return finished.value


def runs_cooperatively(engine: Engine) -> bool:
    """Whether code on this engine may run under `web.threads.run_cooperative`: PostgreSQL, once the engine
    has made its first connection. SQLAlchemy sets the dialect up on that connection under a lock held
    across queries, which a second greenlet of the same thread would wait on forever (the server makes it
    at start-up, in its readiness checks)."""
    return engine.dialect.name == "postgresql" and engine.dialect.server_version_info is not None


def _connect_cooperatively(engine: Engine) -> None:
    """The pool opens cooperative connections. Opening one waits in psycopg's own loop, so in a greenlet on
    the event loop it is opened in a thread (rare: the pool keeps its connections)."""

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        connect = functools.partial(cooperative_connection_class().connect, *cargs, **cparams)
        if in_greenlet():
            return await_(asyncio.get_running_loop().run_in_executor(None, connect))
        return connect()


PING_AFTER_IDLE = 1.0  # seconds a pooled PostgreSQL connection may rest before its checkout pings it


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection on checkout only when it has rested `PING_AFTER_IDLE` seconds.

    `pool_pre_ping` pinged on every checkout: one round trip per request, a fifth of a token request's
    (docs/performance.md, Token endpoint). A connection used within the last second was alive then; one
    that the server dropped since (a restart) fails its statement, and SQLAlchemy then discards every
    connection of the pool opened before it, as it does for any disconnect. A rested connection, or one
    the driver already knows is broken, is pinged (or replaced) before use, as before."""

    @event.listens_for(engine, "checkin")
    def _rested(_dbapi_connection: Any, record: Any) -> None:
        record.info["rested_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        rested_at = record.info.pop("rested_at", None)
        if dbapi_connection.closed:
            raise exc.DisconnectionError("the connection is closed")
        if rested_at is not None and time.monotonic() - rested_at < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:  # the pool replaces it (up to three tries)
            raise exc.DisconnectionError("the connection did not answer a ping") from error


def prepare_sqlite_file(url: str) -> None:
    """Create the SQLite database file 0600 (its -wal and -shm files take the same mode) in a data
    directory created 0700: it holds member data, like the 0600 `secret.key` beside it. An existing file
    readable by others is narrowed to 0600; an existing directory is left as its owner set it."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


SQLITE_PAGE_SIZE = 16384


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (pysqlite's own handling is broken).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # A new database file gets 16 KB pages (SQLite's default is 4 KB): a resource's two copies fit in
        # fewer overflow pages and the index B-trees are shallower: the bulk writer 7 % less CPU, reads
        # by id served as many requests (docs/performance.md, Seeding, "Twenty-sixth session"). It must come
        # before WAL mode, which fixes the size; on an existing file it changes nothing.
        cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def is_sqlite(engine_or_conn: Engine | Connection) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: takes the SQLite write lock up front; commits or rolls back whole."""
    with engine.connect().execution_options(write=True) as conn, conn.begin():
        yield conn


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for reads. On PostgreSQL it runs without a transaction: each statement sees its own
    snapshot, and the BEGIN and COMMIT round trips (a third of a read by id) are saved; a search's later
    statements (includes, total) may see a write committed in between, as any FHIR client must expect."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield conn
        return
    with engine.connect() as conn, conn.begin():
        yield conn


@contextmanager
def single_statement(engine: Engine) -> Iterator[Connection]:
    """PostgreSQL: a connection in autocommit for a write made of one statement, which is then a transaction
    of its own (atomic, durable at its answer): one round trip instead of BEGIN, the statement and COMMIT."""
    if engine.dialect.name != "postgresql":
        raise ValueError("single_statement is for PostgreSQL; use write_transaction")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


class DriverStatement:
    """A Core statement that PostgreSQL runs on psycopg's cursor, compiled once, without SQLAlchemy's
    per-execution work (an execution context, parameter processing, a result object): 50–70 µs of a 90 µs
    statement on a token grant's path, and 9 % of a chained directory search's instructions in process
    (docs/performance.md, Token endpoint and Search). Other databases run it through SQLAlchemy as before.
    Both return the rows as tuples in the statement's column order.

    Only for statements whose parameters psycopg adapts as given: a statement with a parameter that needs
    SQLAlchemy's type processing (other than a constant default) is refused when it is first compiled, and
    so is an IN list given per execution. `runs_on` says beforehand whether a call can take this path (for
    callers that fall back to `conn.execute`).

    `prepared`: PostgreSQL keeps the statement prepared on each connection that runs it, so it is parsed and
    planned once per connection, not per execution. Only for statements whose plan cannot depend on the
    values (every table reached by a unique key): a prepared statement may run a generic plan, which for a
    search can be 20x slower (`make_engine`). The token grants' statements are such: preparing the
    client-credentials insert took PostgreSQL's CPU per grant from 0.46–0.50 to 0.21–0.22 ms
    (docs/performance.md, Token endpoint)."""

    def __init__(self, statement: Any, *, prepared: bool = False) -> None:
        self.statement = statement
        self.prepared = prepared
        self._sql: str | None = None
        self._defaults: dict[str, Any] = {}
        self._fixed: frozenset[str] = frozenset()  # parameters a call may not give: processed, or IN lists
        self._refused: str | None = None

    def _compile(self, dialect: Any) -> str:
        compiled = self.statement.compile(dialect=dialect)
        # SQLAlchemy keeps a compiled statement's bind processors only on this attribute.
        processors = dict(getattr(compiled, "_bind_processors", {}))
        sql, params, expanding = compiled.string, dict(compiled.params), frozenset[str]()
        if compiled.post_compile_params:
            # An IN list's values (an "expanding" parameter) are rendered into the SQL once, one parameter
            # each: such a list is part of the statement, and cannot be given again per execution.
            given = {
                name: None
                for bind, name in compiled.bind_names.items()
                if bind.required and not bind.expanding
            }
            try:
                state = compiled.construct_expanded_state(given)
            except exc.InvalidRequestError as error:  # what SQLAlchemy says of an IN list without values
                raise ValueError(f"an IN list would be given per execution ({error})") from error
            sql, params = state.statement, dict(state.parameters)  # `given` ones still None: per call
            processors.update(state.processors)
            expanding = frozenset(compiled.bind_names[bind] for bind in compiled.post_compile_params)
        defaults: dict[str, Any] = {}
        for name, value in params.items():
            if value is None:
                if name in processors:
                    raise ValueError(f"parameter {name} needs SQLAlchemy's processing")
                continue
            defaults[name] = processors[name](value) if name in processors else value
        self._defaults = defaults
        self._fixed = frozenset(processors) | expanding
        self._sql = sql
        return sql

    def runs_on(self, conn: Connection, params: dict[str, Any]) -> bool:
        """Whether `rows(conn, params)` runs on the driver: PostgreSQL, a statement that compiles for it,
        no given parameter that SQLAlchemy processes or that is an IN list, columns returned as they are."""
        if conn.dialect.name != "postgresql" or self._refused is not None:
            return False
        if self._sql is None:
            try:
                if not _plain_results(self.statement, conn.dialect):
                    raise ValueError("a column needs SQLAlchemy's result processing")
                self._compile(conn.dialect)
            except ValueError as refused:
                self._refused = str(refused)
                return False
        return self._fixed.isdisjoint(params)

    def rows(self, conn: Connection, params: dict[str, Any]) -> list[Any]:
        """The statement's rows (none for a write without RETURNING), in `conn`'s transaction or, on a
        connection in autocommit, as a transaction of its own."""
        if conn.dialect.name != "postgresql":
            result = conn.execute(self.statement, params)
            return list(result.all()) if result.returns_rows else []
        sql = self._sql or self._compile(conn.dialect)
        driver = conn.connection.driver_connection
        try:
            if self.prepared:
                cursor = _execute_prepared(driver, sql, {**self._defaults, **params})
            else:
                cursor = driver.execute(sql, {**self._defaults, **params})  # type: ignore[union-attr]
        except conn.dialect.loaded_dbapi.Error as error:
            if conn.dialect.is_disconnect(error, conn.connection.dbapi_connection, None):
                conn.invalidate(error)  # as SQLAlchemy does: the pool drops it and its older siblings
            raise
        return cursor.fetchall() if cursor.description is not None else []

    def rows_each(self, conn: Connection, params_each: list[dict[str, Any]]) -> list[list[Any]]:
        """PostgreSQL: the statement once per parameter set, sent together (one pipeline) in `conn`'s
        transaction; each execution's rows, in order."""
        if conn.dialect.name != "postgresql" or not self.prepared:
            raise ValueError("rows_each is for prepared statements on PostgreSQL")
        sql = self._sql or self._compile(conn.dialect)
        driver = conn.connection.driver_connection
        threshold = driver.prepare_threshold  # type: ignore[union-attr]
        driver.prepare_threshold = 0  # type: ignore[union-attr]  # prepared, as in `_execute_prepared`
        try:
            with driver.pipeline():  # type: ignore[union-attr]
                cursors = []
                for params in params_each:
                    cursor = driver.cursor()  # type: ignore[union-attr]
                    cursor.execute(sql, {**self._defaults, **params}, prepare=True)
                    cursors.append(cursor)
                driver.commit()  # type: ignore[union-attr]
            each = [cursor.fetchall() if cursor.description is not None else [] for cursor in cursors]
        except conn.dialect.loaded_dbapi.Error as error:
            if conn.dialect.is_disconnect(error, conn.connection.dbapi_connection, None):
                conn.invalidate(error)
            raise
        finally:
            driver.prepare_threshold = threshold  # type: ignore[union-attr]
        return each


class GroupCommit:
    """One prepared statement per call, the calls that wait at the same time on an event loop written
    together: their statements go to PostgreSQL in one pipeline and one transaction, and each call returns
    its own rows once that transaction has committed (group commit). A call is as durable at its answer as
    with a transaction of its own; under load it shares the pool checkout, the round trips and the commit
    with the calls beside it (docs/performance.md, Token endpoint, nineteenth session).

    Only for statements that fail for reasons that are not the caller's (a conflict is answered with
    `ON CONFLICT`): one that fails fails its whole batch. `order` sorts each batch, so that batches
    committing at once on several processes take their row locks in the same order and cannot deadlock.
    A batch starts as soon as the loop is free after its first call, so a lone call does not wait."""

    def __init__(
        self,
        statement: DriverStatement,
        *,
        order: Callable[[dict[str, Any]], Any] | None = None,
        max_batch: int = 64,
        max_in_flight: int = 2,
    ) -> None:
        if not statement.prepared:
            raise ValueError("group commit runs prepared statements")
        self.statement = statement
        self.order = order
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batches] = (
            weakref.WeakKeyDictionary()
        )

    def rows(self, engine: Engine, params: dict[str, Any]) -> list[Any]:
        """The statement's rows for `params`, committed. In a cooperative greenlet (`run_cooperative`) with
        the calls waiting beside it; elsewhere (a thread, a CLI) as a transaction of its own."""
        if not (in_greenlet() and runs_cooperatively(engine)):
            with single_statement(engine) as conn:
                return self.statement.rows(conn, params)
        loop = asyncio.get_running_loop()
        batches = self._queues.get(loop)
        if batches is None:
            batches = self._queues.setdefault(loop, _Batches())
        waiter: asyncio.Future[list[Any]] = loop.create_future()
        batches.waiting.append((params, waiter))
        # A new writer only when every writer is waiting for its batch's commit: one not yet started
        # takes this call with the others that come before it runs.
        if batches.in_flight == len(batches.writers) < self.max_in_flight:
            writer = loop.create_task(self._write_waiting(engine, batches))
            batches.writers.add(writer)
            writer.add_done_callback(batches.writers.discard)
        return await_(waiter)

    async def _write_waiting(self, engine: Engine, batches: _Batches) -> None:
        try:
            while batches.waiting:
                batch = batches.waiting[: self.max_batch]
                del batches.waiting[: self.max_batch]
                if self.order is not None:
                    order = self.order
                    batch.sort(key=lambda waiting: order(waiting[0]))
                batches.in_flight += 1
                try:
                    each = await greenlet_spawn(self._write, engine, [params for params, _ in batch])
                except BaseException as error:
                    _fail(batch, error)
                    if not isinstance(error, Exception):
                        raise
                    continue
                finally:
                    batches.in_flight -= 1
                for (_, waiter), rows in zip(batch, each, strict=True):
                    if not waiter.done():
                        waiter.set_result(rows)
        except BaseException as error:  # cancelled (the loop is closing): so are the calls still waiting
            if len(batches.writers) <= 1:
                _fail(batches.waiting, error)
                batches.waiting.clear()
            raise

    def _write(self, engine: Engine, params_each: list[dict[str, Any]]) -> list[list[Any]]:
        with engine.begin() as conn:
            return self.statement.rows_each(conn, params_each)


class _Batches:
    __slots__ = ("in_flight", "waiting", "writers")

    def __init__(self) -> None:
        self.waiting: list[tuple[dict[str, Any], asyncio.Future[list[Any]]]] = []
        self.writers: set[asyncio.Task[None]] = set()
        self.in_flight = 0  # writers whose batch is being written


def _fail(batch: list[tuple[dict[str, Any], asyncio.Future[list[Any]]]], error: BaseException) -> None:
    for _, waiter in batch:
        if waiter.done():
            continue
        if isinstance(error, Exception):
            waiter.set_exception(error)
        else:
            waiter.cancel()


def _execute_prepared(driver: Any, sql: str, params: dict[str, Any]) -> Any:
    """Run `sql` as a prepared statement on an engine's connection, where preparing is otherwise off
    (`prepare_threshold=None` turns psycopg's preparing off altogether, `prepare=True` included): on only for
    this execution. psycopg keeps the statement's name, so later executions on the connection reuse it; a
    rollback, or a statement that fails, forgets it, and the next execution prepares it again."""
    threshold = driver.prepare_threshold
    driver.prepare_threshold = 0
    try:
        return driver.execute(sql, params, prepare=True)
    finally:
        driver.prepare_threshold = threshold


def _plain_results(statement: Any, dialect: Any) -> bool:
    """Whether SQLAlchemy returns every column of `statement` as the driver gives it (no result processor;
    numeric types are refused, as theirs depends on the column's type in the result)."""
    for column in getattr(statement, "selected_columns", ()):
        impl = column.type.dialect_impl(dialect)
        if isinstance(impl, Numeric) or impl.result_processor(dialect, None) is not None:
            return False
    return True


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) in `conn`'s transaction. On PostgreSQL by `COPY` on the
    driver's cursor: 5–6 µs of client CPU a row against 32 µs for an executemany, and a quarter of its
    wall time, the server's work included (docs/performance.md, Token endpoint: the security and audit
    records of every grant). Falls back to SQLAlchemy's executemany where COPY would differ from it: other
    databases, rows with different sets of keys, a column that needs SQLAlchemy's type processing, an
    omitted column with a Python-side default."""
    if not rows:
        return
    keys = list(rows[0])
    if conn.dialect.name != "postgresql" or not _copyable(table, tuple(keys), conn.dialect):
        conn.execute(table.insert(), rows)
        return
    if any(row.keys() != rows[0].keys() for row in rows):
        conn.execute(table.insert(), rows)
        return
    values = operator.itemgetter(*keys) if len(keys) > 1 else (lambda row: (row[keys[0]],))
    quote = conn.dialect.identifier_preparer
    columns = ", ".join(quote.quote(table.c[key].name) for key in keys)
    driver = conn.connection.driver_connection
    try:
        statement = f"COPY {quote.format_table(table)} ({columns}) FROM STDIN"
        with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(values(row))
    except conn.dialect.loaded_dbapi.Error as error:
        if conn.dialect.is_disconnect(error, conn.connection.dbapi_connection, None):
            conn.invalidate(error)
        raise


@functools.cache
def _copyable(table: Table, keys: tuple[str, ...], dialect: Any) -> bool:
    if any(key not in table.c for key in keys):
        return False
    types = [table.c[key].type.dialect_impl(dialect) for key in keys]
    if any(kind.bind_processor(dialect) is not None for kind in types):
        return False
    return all(column.default is None for column in table.columns if column.key not in keys)
