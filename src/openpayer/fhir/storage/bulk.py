"""Batched writes for bulk loading: the semantics of `ResourceRepository.put`, a few statements per batch.

`ResourceRepository.put` issues ~12 statements per resource (lock, history, current row, index delete and
inserts). A load writes hundreds of resources per transaction instead, with:

1. one SELECT (``FOR UPDATE`` on PostgreSQL) of the current rows of the whole batch;
2. the new `fhir_history` and `fhir_resource` rows, their keys drawn first (`_next_keys`: the tables'
   sequences in one statement on PostgreSQL, max + 1 onwards under SQLite's write lock): on PostgreSQL the
   rows sent by COPY (an INSERT of hundreds of rows costs more in the driver, which re-parses its SQL text,
   than in the server), elsewhere one executemany INSERT on the driver into each (SQLAlchemy's
   "insertmanyvalues" with ``RETURNING`` cost the seed's writer a sixth of its time);
3. one executemany UPDATE of the current rows that get a new version;
4. one DELETE per index table for the replaced index rows, and the new index rows: a COPY per index table
   on PostgreSQL (faster than any INSERT), one executemany INSERT per index table elsewhere, the reference
   rows with their targets' rids (`targets.resolve`);
5. the stored reference rows that were waiting for the batch's new resources pointed at them
   (`targets.adopt`). The batch holds its environment's write lock (`targets.lock`) from its first statement.

What is written is what `put` writes: a history row and the current row carrying the same compressed bytes,
stamped by `repository.stamp` (meta.versionId, meta.lastUpdated), and the index rows of that version. A
resource whose content, ignoring meta.versionId and meta.lastUpdated, equals its current version is left
alone and counted as unchanged (`put` would write a new version; a load must be idempotent).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Table, bindparam, delete, select, update
from sqlalchemy.exc import SQLAlchemyError

from openpayer.db import write_transaction
from openpayer.fhir.storage import codec, targets
from openpayer.fhir.storage.repository import stamp
from openpayer.fhir.storage.rows import (
    COLUMNS,
    REFERENCES,
    RID,
    copy_statement,
    reference_targets,
    with_target_rids,
)
from openpayer.fhir.storage.tables import (
    INDEX_TABLES,
    fhir_history,
    fhir_resource,
    idx_reference,
)
from openpayer.fhir.storage.targets import Target

_TABLES: dict[str, Table] = {table.name: table for table in INDEX_TABLES}
# Analysed as a load makes them grow: the batch look-up reads `fhir_resource`, and `targets.adopt` the
# waiting reference rows (without statistics it joined them by scanning: 10 s for a batch at 12,000 rows).
_GROWING = (fhir_resource, idx_reference)
# The batch's current rows, locked: the ids as one array, where 1,000 bound parameters cost the main
# process SQL to build and PostgreSQL a list to parse in every batch.
_CURRENT_POSTGRESQL = (
    "SELECT rid, id, version, deleted, content FROM fhir_resource "
    "WHERE env = %(env)s AND type = %(type)s AND id = ANY(%(ids)s) FOR UPDATE"
)
# SQLite: a load's connection keeps 64 MB of pages (the default 2 MB cannot hold the index B-trees it keeps
# descending) and checkpoints the WAL itself only past 16,000 pages (256 MB with a new database's 16 KB
# pages, 64 MB with 4 KB) instead of 1,000, so that a page rewritten by several batches is copied back once
# and the file synced less often (benchmarks/bench_writer.py: the writer 6-10 % shorter); the loader copies
# the log back on a thread of its own meanwhile (`storage.checkpoint`). Both are settings of the
# connection; only the command-line loader uses this writer.
_SQLITE_LOAD_PRAGMAS = ("PRAGMA cache_size=-65536", "PRAGMA wal_autocheckpoint=16000")
_TABLE_SIZES = "SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relname = ANY(%s)"
_SELECT_CHUNK = 500  # ids per SELECT ... IN (...): well under SQLite's and PostgreSQL's parameter limits
_METHOD = "PUT"  # a load is an update-as-create with the client's ids (FHIR R4 §3.1.0.4.1)


def content_digest(resource: dict[str, Any]) -> bytes:
    """A hash of the resource's content, ignoring the server's meta.versionId and meta.lastUpdated."""
    meta = resource.get("meta")
    if isinstance(meta, dict) and ("versionId" in meta or "lastUpdated" in meta):
        rest = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
        resource = {k: v for k, v in resource.items() if k != "meta"}
        if rest:
            resource["meta"] = rest
    return hashlib.blake2b(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


@dataclass(slots=True)
class PreparedResource:
    """A validated resource ready to write: stamped as version 1 at `micros`, compressed, its index extracted.

    `index` maps index table names to rows of column values (`rows.index_values`), `rid` prepended at write
    time; or, for PostgreSQL, `copy` maps them to the rows in COPY text form (`rows.index_copy_rows`), every
    `rid` a placeholder byte that the writer replaces (so the main process does no per-row work).
    """

    where: str  # the record's place in its file: an NDJSON line number or `entry[3]`
    rtype: str
    id: str
    micros: int
    body: bytes  # codec-compressed JSON of the resource stamped as version 1
    index: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    copy: dict[str, bytes] | None = None
    # The (type, id) of each reference row's local target, in row order (`reference_targets`): the writer
    # puts their rids in the rows' `target_rid` (`TARGET` marks the place).
    targets: list[Target] = field(default_factory=list)

    def __reduce__(self) -> tuple[type[PreparedResource], tuple[Any, ...]]:
        # Workers send thousands of these to the main process: pickled as the constructor's arguments,
        # a third of the CPU of the dataclass's default (which builds its state through `fields()`).
        return PreparedResource, (
            self.where,
            self.rtype,
            self.id,
            self.micros,
            self.body,
            self.index,
            self.copy,
            self.targets,
        )


@dataclass(slots=True)
class BatchOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)  # (unit position, reason)


@dataclass(frozen=True, slots=True)
class _Current:
    rid: int
    version: int
    deleted: bool
    content: bytes | None


class BulkWriter:
    """Writes groups ("units") of prepared resources; each unit is all-or-nothing."""

    def __init__(self, engine: Engine, env: str) -> None:
        self.engine = engine
        self.env = env
        self._written = 0
        self._next_analyze: int | None = None  # PostgreSQL: rows written by this writer at the next ANALYZE
        self._sequences: dict[str, str] = {}  # PostgreSQL: table -> the sequence of its key

    def write(self, units: Sequence[Sequence[PreparedResource]], expected: int | None = None) -> BatchOutcome:
        """Write every unit in one transaction; if that fails, each unit in its own transaction.

        A unit that fails on its own (e.g. a value the database refuses) is reported in `failed`, nothing of
        it written. Within a batch, a later unit writing the same resource as an earlier one follows it.
        `expected`: how many resources the caller expects this writer to have written in all, if it knows.
        """
        outcome = BatchOutcome()
        self._keep_statistics(expected)
        position = 0
        for group in _without_repeats(units):
            try:
                with write_transaction(self.engine) as conn:
                    partial = BatchOutcome()
                    self._write(conn, [record for unit in group for record in unit], partial)
                _add(outcome, partial)
            except SQLAlchemyError:
                for offset, unit in enumerate(group):
                    partial = BatchOutcome()
                    try:
                        with write_transaction(self.engine) as conn:
                            self._write(conn, list(unit), partial)
                    except SQLAlchemyError as exc:
                        outcome.failed.append((position + offset, f"database error: {_brief(exc)}"))
                        continue
                    _add(outcome, partial)
            position += len(group)
        self._written += outcome.created + outcome.updated
        return outcome

    def analyze(
        self, tables: Sequence[Table] = (fhir_resource, fhir_history, *INDEX_TABLES), vacuum: bool = False
    ) -> None:
        """PostgreSQL: refresh the planner's statistics (after a bulk load autovacuum lags behind).

        With `vacuum` (the end of a load), VACUUM also marks the new pages all-visible, without which
        PostgreSQL cannot answer a search page from the (env, type, rid) index alone.
        """
        if self.engine.dialect.name != "postgresql":
            return
        command = "VACUUM (ANALYZE)" if vacuum else "ANALYZE"
        names = [table.name for table in tables]
        try:
            if len(names) > 1:
                with self.engine.connect() as conn:  # the largest first, so that none is left to run alone
                    rows = conn.exec_driver_sql(_TABLE_SIZES, (names,))
                    sizes: dict[str, int] = dict(rows.all())
                names.sort(key=lambda name: -sizes.get(name, 0))
            # One connection per core: each ANALYZE runs on one PostgreSQL backend, and at the end of a
            # load they are all that is left to do (docs/performance.md, Loading, "Thirteenth session").
            with ThreadPoolExecutor(min(len(names), os.cpu_count() or 1)) as pool:
                list(pool.map(lambda name: self._run_maintenance(f"{command} {name}"), names))
        except SQLAlchemyError:  # e.g. not the tables' owner: the plans are merely worse
            return

    def _run_maintenance(self, statement: str) -> None:
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(statement)

    def _keep_statistics(self, expected: int | None = None) -> None:
        """Keep `fhir_resource` statistics fresh while it grows from nothing.

        Without statistics PostgreSQL reads the batch look-up `env = ? AND type = ? AND id IN (...)` through
        the (env, type, last_updated) index and filters every row of the type: each batch then scans all
        earlier ones (measured: 0.5 s per batch at 20,000 rows, against 20 ms with statistics). ANALYZE runs
        when the table has never been analysed and each time this writer has doubled what it has written,
        unless it is `expected` to end before doubling again: its caller analyses every table at the end.
        """
        if self.engine.dialect.name != "postgresql":
            return
        if self._next_analyze is None:
            with self.engine.connect() as conn:
                tuples = conn.exec_driver_sql(
                    "SELECT reltuples FROM pg_class WHERE oid = 'fhir_resource'::regclass"
                ).scalar()
            self._next_analyze = 1000
            if tuples is not None and tuples < 0:  # never analysed (PostgreSQL 14+)
                self.analyze(_GROWING)
        elif self._written >= self._next_analyze:
            if expected is None or expected >= 2 * self._written:
                self.analyze(_GROWING)
            self._next_analyze = 2 * self._written

    # ---- one transaction ---------------------------------------------------------------------
    def _write(self, conn: Connection, records: list[PreparedResource], outcome: BatchOutcome) -> None:
        if not records:
            return
        if conn.dialect.name == "sqlite":
            for pragma in _SQLITE_LOAD_PRAGMAS:
                conn.exec_driver_sql(pragma)
        targets.lock(conn, self.env)
        existing = self._current_rows(conn, records)
        fresh: list[PreparedResource] = []
        changed: list[tuple[PreparedResource, _Current, int]] = []
        for record in records:
            current = existing.get((record.rtype, record.id))
            if current is None:
                fresh.append(record)
            elif (
                not current.deleted
                and current.content is not None
                and _same_content(current.content, record.body)
            ):
                outcome.unchanged += 1
            else:
                version = current.version + 1
                record.body = _restamp(record.body, version, record.micros)
                changed.append((record, current, version))
        if not fresh and not changed:
            return
        history = [(r, 1) for r in fresh] + [(r, version) for r, _, version in changed]
        seqs = self._write_history(conn, history)
        fresh_seqs, changed_seqs = seqs[: len(fresh)], seqs[len(fresh) :]
        rids = self._write_current(conn, fresh, fresh_seqs)
        if changed:
            conn.execute(
                update(fhir_resource)
                .where(fhir_resource.c.rid == bindparam("b_rid"))
                .values(
                    version=bindparam("b_version"),
                    last_updated=bindparam("b_micros"),
                    deleted=False,
                    seq=bindparam("b_seq"),
                    content=bindparam("b_content"),
                ),
                [
                    {
                        "b_rid": current.rid,
                        "b_version": version,
                        "b_micros": record.micros,
                        "b_seq": seq,
                        "b_content": record.body,
                    }
                    for (record, current, version), seq in zip(changed, changed_seqs, strict=True)
                ],
            )
            replaced = [current.rid for _, current, _ in changed]
            for table in INDEX_TABLES:
                for start in range(0, len(replaced), _SELECT_CHUNK):
                    conn.execute(
                        delete(table).where(table.c.rid.in_(replaced[start : start + _SELECT_CHUNK]))
                    )
        keyed = list(zip(fresh, rids, strict=True)) + [(r, current.rid) for r, current, _ in changed]
        known = {(record.rtype, record.id): rid for record, rid in keyed}
        wanted = {
            target
            for record in records
            for target in (record.targets if record.copy is not None else reference_targets(record.index))
        }
        found = targets.resolve(conn, self.env, wanted, known)
        self._insert_index(conn, keyed, found)
        if fresh:
            targets.adopt(conn, self.env, {(r.rtype, r.id): rid for r, rid in zip(fresh, rids, strict=True)})
        outcome.created += len(fresh) + sum(1 for _, current, _ in changed if current.deleted)
        outcome.updated += sum(1 for _, current, _ in changed if not current.deleted)

    def _current_rows(
        self, conn: Connection, records: list[PreparedResource]
    ) -> dict[tuple[str, str], _Current]:
        found: dict[tuple[str, str], _Current] = {}
        wanted = {(r.rtype, r.id) for r in records}
        by_type: dict[str, list[str]] = {}
        for rtype, rid in sorted(wanted):
            by_type.setdefault(rtype, []).append(rid)
        c = fhir_resource.c
        for rtype, ids in by_type.items():
            if conn.dialect.name == "postgresql":  # locked, as ResourceRepository.lock_current locks
                rows = conn.exec_driver_sql(_CURRENT_POSTGRESQL, {"env": self.env, "type": rtype, "ids": ids})
                for rid, tid, version, deleted, content in rows:
                    found[(rtype, tid)] = _Current(rid, version, deleted, content)
                continue
            for start in range(0, len(ids), _SELECT_CHUNK):  # SQLite: its write lock is held already
                query = select(c.rid, c.id, c.version, c.deleted, c.content).where(
                    c.env == self.env, c.type == rtype, c.id.in_(ids[start : start + _SELECT_CHUNK])
                )
                for row in conn.execute(query):
                    found[(rtype, row.id)] = _Current(row.rid, row.version, row.deleted, row.content)
        return found

    def _next_keys(self, conn: Connection, table: Table, column: str, count: int) -> list[int]:
        """`count` new keys for `table.column`, ascending, drawn as the database would draw them.

        PostgreSQL: from the column's sequence, in one statement. SQLite: the INTEGER PRIMARY KEY is the
        rowid, which SQLite itself draws as max + 1 (no AUTOINCREMENT); this transaction holds the write
        lock (BEGIN IMMEDIATE), so max + 1 ... max + count are the keys SQLite would have given the rows
        inserted one by one."""
        if conn.dialect.name == "sqlite":
            top = conn.exec_driver_sql(f"SELECT max({column}) FROM {table.name}").scalar()  # noqa: S608 - our names
            first = int(top or 0) + 1
            return list(range(first, first + count))
        sequence = self._sequences.get(table.name)
        if sequence is None:
            sequence = conn.exec_driver_sql(
                "SELECT pg_get_serial_sequence(%(table)s, %(column)s)",
                {"table": table.name, "column": column},
            ).scalar_one()
            self._sequences[table.name] = sequence
        # One row (an int8 array, converted by psycopg in C) rather than `count` rows fetched one by one.
        keys = conn.exec_driver_sql(
            "SELECT array_agg(nextval(%(sequence)s::regclass)) FROM generate_series(1, %(count)s)",
            {"sequence": sequence, "count": count},
        ).scalar_one()
        return sorted(int(key) for key in keys)

    def _write_history(self, conn: Connection, items: list[tuple[PreparedResource, int]]) -> list[int]:
        seqs = self._next_keys(conn, fhir_history, "seq", len(items))
        env = self.env
        _write_rows(
            conn,
            fhir_history,
            _HISTORY_COLUMNS,
            [
                (seq, env, r.rtype, r.id, version, r.micros, _METHOD, False, r.body)
                for (r, version), seq in zip(items, seqs, strict=True)
            ],
            _HISTORY_TYPES,
        )
        return seqs

    def _write_current(self, conn: Connection, fresh: list[PreparedResource], seqs: list[int]) -> list[int]:
        if not fresh:
            return []
        rids = self._next_keys(conn, fhir_resource, "rid", len(fresh))
        env = self.env
        _write_rows(
            conn,
            fhir_resource,
            _CURRENT_COLUMNS,
            [
                (rid, env, r.rtype, r.id, 1, r.micros, False, seq, r.body)
                for r, rid, seq in zip(fresh, rids, seqs, strict=True)
            ],
            _CURRENT_TYPES,
        )
        return rids

    def _insert_index(
        self, conn: Connection, keyed: Iterable[tuple[PreparedResource, int]], found: dict[Target, int]
    ) -> None:
        rows: dict[str, list[tuple[Any, ...]]] = {}
        texts: dict[str, list[bytes]] = {}
        psycopg = conn.dialect.driver == "psycopg"
        get = found.get
        for record, rid in keyed:
            if record.copy is not None and psycopg:
                key = str(rid).encode()
                for name, text in record.copy.items():
                    text = text.replace(RID, key)
                    if name == REFERENCES and record.targets:
                        text = with_target_rids(text, record.targets, found)
                    texts.setdefault(name, []).append(text)
                continue
            if record.copy is not None:
                raise ValueError("index rows in COPY text form need a PostgreSQL (psycopg) connection")
            # The rid put before each value in C (`map` of a tuple's `+`), not by a generator in Python (a
            # seed's 330,000 index rows: ~0.05 s of the writer's 1.8 s, within the machine's noise).
            prefix = (rid,)
            for name, values in record.index.items():
                if name == REFERENCES:
                    rows.setdefault(name, []).extend(
                        [
                            prefix + value[:-1] + (None if value[-1] is None else get((value[1], value[2])),)
                            for value in values
                        ]
                    )
                    continue
                rows.setdefault(name, []).extend(map(prefix.__add__, values))
        for name, chunks in texts.items():
            driver: Any = conn.connection.dbapi_connection  # a psycopg.Connection, in this transaction
            with driver.cursor() as cursor, cursor.copy(copy_statement(name)) as copy:
                copy.write(b"".join(chunks))
        for name, values in rows.items():
            if values:
                _write_rows(conn, _TABLES[name], COLUMNS[name], values)


# The resource rows go in COPY's binary format: the compressed content is sent as it is, where the text
# format hex-encodes it in the client and decodes it in the server (a resource's two rows: ~0.02 ms of
# the main process's CPU and ~0.035 ms of PostgreSQL's, measured on 7.8 KB ExplanationOfBenefit).
# The binary format needs each column's exact type, in column order.
_HISTORY_COLUMNS = ("seq", "env", "type", "id", "version", "last_updated", "method", "deleted", "content")
_HISTORY_TYPES = ("int8", "varchar", "varchar", "varchar", "int4", "int8", "varchar", "bool", "bytea")
_CURRENT_COLUMNS = ("rid", "env", "type", "id", "version", "last_updated", "deleted", "seq", "content")
_CURRENT_TYPES = ("int8", "varchar", "varchar", "varchar", "int4", "int8", "bool", "int8", "bytea")


def _write_rows(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: list[tuple[Any, ...]],
    types: Sequence[str] | None = None,
) -> None:
    """Insert `rows` (values in `columns` order): PostgreSQL COPY, binary with `types` (no per-row statement
    or SQL text to parse), else one executemany INSERT on the driver (no SQLAlchemy work per row)."""
    names = ", ".join(columns)
    if conn.dialect.driver == "psycopg":
        binary = " (FORMAT BINARY)" if types is not None else ""
        _copy(conn, f"COPY {table.name} ({names}) FROM STDIN{binary}", rows, types)
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table.name} ({names}) VALUES ({', '.join([mark] * len(columns))})"  # noqa: S608 - names from our own tables
    conn.exec_driver_sql(sql, rows)


def _copy(
    conn: Connection, statement: str, rows: Iterable[tuple[Any, ...]], types: Sequence[str] | None = None
) -> None:
    """PostgreSQL COPY of `rows`, in the connection's transaction (binary format: with `types`)."""
    driver: Any = conn.connection.dbapi_connection  # a psycopg.Connection, in this transaction
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        if types is not None:
            copy.set_types(list(types))
        write = copy.write_row
        for row in rows:
            write(row)


def _without_repeats(units: Sequence[Sequence[PreparedResource]]) -> list[list[Sequence[PreparedResource]]]:
    """Split a batch where a unit writes a resource an earlier unit of the same group writes."""
    groups: list[list[Sequence[PreparedResource]]] = [[]]
    seen: set[tuple[str, str]] = set()
    for unit in units:
        keys = {(r.rtype, r.id) for r in unit}
        if seen & keys:
            groups.append([])
            seen = set()
        groups[-1].append(unit)
        seen |= keys
    return groups


def _add(total: BatchOutcome, part: BatchOutcome) -> None:
    total.created += part.created
    total.updated += part.updated
    total.unchanged += part.unchanged


def _same_content(stored: bytes, incoming: bytes) -> bool:
    """Whether two stored forms hold the same resource but for meta.versionId and meta.lastUpdated.

    Computed here, only for resources that exist already, so that a first load pays nothing for it.
    """
    left = _stored_digest(stored)
    return left is not None and left == _stored_digest(incoming)


def _stored_digest(compressed: bytes) -> bytes | None:
    try:
        parsed = orjson.loads(codec.decode(compressed))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return content_digest(parsed) if isinstance(parsed, dict) else None


def _restamp(body: bytes, version: int, micros: int) -> bytes:
    resource: dict[str, Any] = orjson.loads(codec.decode(body))
    return codec.encode(stamp(resource, version, micros))[1]


def _brief(exc: SQLAlchemyError) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
