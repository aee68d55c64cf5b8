"""Versioned resource storage: every write adds a history row and replaces the current row and its index.

The repository works on a caller's `Connection`, so that one transaction can span many writes (a FHIR
transaction Bundle, a load batch) and roll back whole. It neither validates nor knows HTTP: the FHIR
services above it do that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from openpayer.clock import Clock, to_http_date, to_instant
from openpayer.fhir.errors import PreconditionFailed
from openpayer.fhir.storage import codec, targets
from openpayer.fhir.storage.index import IndexRows
from openpayer.fhir.storage.tables import (
    INDEX_TABLES,
    fhir_history,
    fhir_resource,
    idx_date,
    idx_number,
    idx_quantity,
    idx_reference,
    idx_special,
    idx_string,
    idx_token,
    idx_uri,
    index_key,
)

Indexer = Callable[[dict[str, Any]], IndexRows]


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """One version of a resource as stored; `body` is the exact JSON bytes served on reads."""

    type: str
    id: str
    version: int
    last_updated: int
    deleted: bool
    body: bytes | None
    method: str = "PUT"

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    @property
    def last_modified(self) -> str:
        return to_http_date(self.last_updated)

    @property
    def last_updated_instant(self) -> str:
        return to_instant(self.last_updated)

    def json(self) -> dict[str, Any]:
        if self.body is None:
            raise ValueError("a deleted version has no content")
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed


@dataclass(frozen=True, slots=True)
class WriteResult:
    stored: StoredVersion
    created: bool  # True when this write created the logical resource (or re-created a deleted one)
    changed: bool = True  # False when a delete found nothing to delete


def _stamp(resource: dict[str, Any], version: int, micros: int) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = to_instant(micros)
    # Keep `meta` in its usual place near the top: resourceType, id, meta, then the rest.
    stamped: dict[str, Any] = {"resourceType": resource["resourceType"], "id": resource["id"], "meta": meta}
    for key, value in resource.items():
        if key not in stamped:
            stamped[key] = value
    return stamped


class ResourceRepository:
    def __init__(self, indexer: Indexer | None = None, clock: Clock | None = None) -> None:
        """`clock` stamps `meta.lastUpdated`: the composition root's; real time for a lone repository."""
        self._indexer = indexer
        self.clock = clock or Clock()

    # ---- reads -------------------------------------------------------------------------------
    def read(self, conn: Connection, env: str, rtype: str, rid: str) -> StoredVersion | None:
        row = conn.execute(
            select(
                fhir_resource.c.version,
                fhir_resource.c.last_updated,
                fhir_resource.c.deleted,
                fhir_resource.c.content,
            ).where(fhir_resource.c.env == env, fhir_resource.c.type == rtype, fhir_resource.c.id == rid)
        ).first()
        if row is None:
            return None
        body = codec.decode(row.content) if row.content is not None else None
        return StoredVersion(rtype, rid, row.version, row.last_updated, row.deleted, body)

    def vread(self, conn: Connection, env: str, rtype: str, rid: str, version: int) -> StoredVersion | None:
        row = conn.execute(
            select(
                fhir_history.c.last_updated,
                fhir_history.c.deleted,
                fhir_history.c.content,
                fhir_history.c.method,
            ).where(
                fhir_history.c.env == env,
                fhir_history.c.type == rtype,
                fhir_history.c.id == rid,
                fhir_history.c.version == version,
            )
        ).first()
        if row is None:
            return None
        body = codec.decode(row.content) if row.content is not None else None
        return StoredVersion(rtype, rid, version, row.last_updated, row.deleted, body, row.method)

    def exists(self, conn: Connection, env: str, rtype: str, rid: str) -> bool:
        found = conn.execute(
            select(fhir_resource.c.rid).where(
                fhir_resource.c.env == env,
                fhir_resource.c.type == rtype,
                fhir_resource.c.id == rid,
                fhir_resource.c.deleted.is_(False),
            )
        ).first()
        return found is not None

    # ---- writes ------------------------------------------------------------------------------
    def put(
        self,
        conn: Connection,
        env: str,
        resource: dict[str, Any],
        *,
        method: str = "PUT",
        if_match: int | None = None,
        require_new: bool = False,
    ) -> WriteResult:
        """Write a new current version of `resource` (whose `id` is set), creating the resource if needed."""
        rtype, rid = resource["resourceType"], resource["id"]
        targets.lock(conn, env)
        current = self.lock_current(conn, env, rtype, rid)
        if if_match is not None and (current is None or current.deleted or current.version != if_match):
            found = "none" if current is None or current.deleted else str(current.version)
            raise PreconditionFailed(
                f"{rtype}/{rid}: If-Match expects version {if_match}, the current version is {found}"
            )
        if require_new and current is not None and not current.deleted:
            raise PreconditionFailed(f"{rtype}/{rid} already exists")
        version = 1 if current is None else current.version + 1
        micros = self.clock.now_micros()
        stamped = _stamp(resource, version, micros)
        raw, compressed = codec.encode(stamped)
        if current is None:
            key = self._insert_new(conn, env, rtype, rid, micros, method, compressed)
        else:
            seq = self._append_history(conn, env, rtype, rid, version, micros, method, False, compressed)
            key = current.key
            conn.execute(
                update(fhir_resource)
                .where(fhir_resource.c.rid == key)
                .values(version=version, last_updated=micros, deleted=False, seq=seq, content=compressed)
            )
            self._clear_index(conn, key)
        self._write_index(conn, env, rtype, key, stamped)
        if current is None:
            targets.adopt(conn, env, {(rtype, rid): key})
        stored = StoredVersion(rtype, rid, version, micros, False, raw, method)
        return WriteResult(stored, created=current is None or current.deleted)

    def delete(self, conn: Connection, env: str, rtype: str, rid: str) -> WriteResult:
        """Soft delete: a history row without content; the index forgets the resource."""
        targets.lock(conn, env)  # taken first in every FHIR write transaction (`targets`)
        current = self.lock_current(conn, env, rtype, rid)
        if current is None or current.deleted:
            version = 0 if current is None else current.version
            last = 0 if current is None else current.last_updated
            return WriteResult(StoredVersion(rtype, rid, version, last, True, None, "DELETE"), False, False)
        version = current.version + 1
        micros = self.clock.now_micros()
        seq = self._append_history(conn, env, rtype, rid, version, micros, "DELETE", True, None)
        conn.execute(
            update(fhir_resource)
            .where(fhir_resource.c.rid == current.key)
            .values(version=version, last_updated=micros, deleted=True, seq=seq, content=None)
        )
        self._clear_index(conn, current.key)
        return WriteResult(StoredVersion(rtype, rid, version, micros, True, None, "DELETE"), created=False)

    def reindex(self, conn: Connection, env: str, rtype: str, rid: str) -> None:
        targets.lock(conn, env)
        current = self.lock_current(conn, env, rtype, rid)
        if current is None or current.deleted:
            return
        stored = self.read(conn, env, rtype, rid)
        if stored is None or stored.body is None:
            return
        self._clear_index(conn, current.key)
        self._write_index(conn, env, rtype, current.key, stored.json())

    # ---- internals ---------------------------------------------------------------------------
    @dataclass(frozen=True, slots=True)
    class _Current:
        key: int
        version: int
        deleted: bool
        last_updated: int

    def lock_current(self, conn: Connection, env: str, rtype: str, rid: str) -> _Current | None:
        query = select(
            fhir_resource.c.rid,
            fhir_resource.c.version,
            fhir_resource.c.deleted,
            fhir_resource.c.last_updated,
        ).where(fhir_resource.c.env == env, fhir_resource.c.type == rtype, fhir_resource.c.id == rid)
        if conn.dialect.name != "sqlite":  # SQLite writers are serialised by BEGIN IMMEDIATE instead
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            return None
        return self._Current(row.rid, row.version, row.deleted, row.last_updated)

    def _append_history(
        self,
        conn: Connection,
        env: str,
        rtype: str,
        rid: str,
        version: int,
        micros: int,
        method: str,
        deleted: bool,
        compressed: bytes | None,
    ) -> int:
        result = conn.execute(
            insert(fhir_history)
            .values(
                env=env,
                type=rtype,
                id=rid,
                version=version,
                last_updated=micros,
                method=method,
                deleted=deleted,
                content=compressed,
            )
            .returning(fhir_history.c.seq)
        )
        return int(result.scalar_one())

    def _insert_new(
        self,
        conn: Connection,
        env: str,
        rtype: str,
        rid: str,
        micros: int,
        method: str,
        compressed: bytes,
    ) -> int:
        """Insert version 1 (history and current rows) in a savepoint: a lost creation race is retryable."""
        try:
            with conn.begin_nested():
                seq = self._append_history(conn, env, rtype, rid, 1, micros, method, False, compressed)
                result = conn.execute(
                    insert(fhir_resource)
                    .values(
                        env=env,
                        type=rtype,
                        id=rid,
                        version=1,
                        last_updated=micros,
                        deleted=False,
                        seq=seq,
                        content=compressed,
                    )
                    .returning(fhir_resource.c.rid)
                )
                return int(result.scalar_one())
        except IntegrityError as exc:
            # Another transaction created the same id between our look-up and insert: the caller retries.
            raise ConcurrentCreate(f"{rtype}/{rid} was created concurrently") from exc

    def _clear_index(self, conn: Connection, key: int) -> None:
        for table in INDEX_TABLES:
            conn.execute(delete(table).where(table.c.rid == key))

    def _write_index(
        self, conn: Connection, env: str, rtype: str, key: int, resource: dict[str, Any]
    ) -> None:
        if self._indexer is None:
            return
        rows = self._indexer(resource)
        for table, values in index_rows_to_values(env, rtype, key, rows):
            if table is idx_reference and values:
                wanted = [(v["target_type"], v["target_id"]) for v in values if v["target_rid"] is not None]
                found = targets.resolve(conn, env, wanted, {(rtype, resource["id"]): key})
                for v in values:
                    if v["target_rid"] is not None:
                        v["target_rid"] = found.get((v["target_type"], v["target_id"]))
            if values:
                conn.execute(insert(table), values)


class ConcurrentCreate(PreconditionFailed):
    """Raised when two writers create the same id at once; the service layer retries the write once."""

    status = 409


def index_rows_to_values(
    env: str, rtype: str, key: int, rows: IndexRows
) -> Iterable[tuple[Any, Sequence[dict[str, Any]]]]:
    """Turn extracted index values into insert parameters per index table."""
    keys: dict[str, int] = {}

    def hkey(param: str) -> int:
        found = keys.get(param)
        if found is None:
            found = keys[param] = index_key(env, rtype, param)
        return found

    yield (
        idx_string,
        [
            {
                "rid": key,
                "hkey": hkey(v.param),
                "value_norm": v.normalized[:255],
                "value_exact": v.value[:512],
            }
            for v in rows.strings
        ],
    )
    yield (
        idx_token,
        [
            {
                "rid": key,
                "hkey": hkey(v.param),
                "system": _cut(v.system, 255),
                "code": _cut(v.code, 255),
                "text_norm": _cut(v.text, 255),
            }
            for v in rows.tokens
        ],
    )
    yield idx_date, [{"rid": key, "hkey": hkey(v.param), "low": v.low, "high": v.high} for v in rows.dates]
    yield idx_number, [{"rid": key, "hkey": hkey(v.param), "value": v.value} for v in rows.numbers]
    yield (
        idx_quantity,
        [
            {
                "rid": key,
                "hkey": hkey(v.param),
                "value": v.value,
                "system": _cut(v.system, 255),
                "code": _cut(v.code, 64),
                "unit": _cut(v.unit, 64),
            }
            for v in rows.quantities
        ],
    )
    yield (
        idx_reference,
        [
            {
                "rid": key,
                "hkey": hkey(v.param),
                "target_type": v.target_type,
                "target_id": _cut(v.target_id, 64),
                "url": _cut(v.url, 512),
                "ident_system": _cut(v.identifier_system, 255),
                "ident_value": _cut(v.identifier_value, 255),
                "target_rid": None if v.target_type is None or v.target_id is None else targets.TARGET,
            }
            for v in rows.references
        ],
    )
    yield idx_uri, [{"rid": key, "hkey": hkey(v.param), "value": v.value[:512]} for v in rows.uris]
    yield (
        idx_special,
        [
            {"rid": key, "hkey": hkey(v.param), "latitude": v.latitude, "longitude": v.longitude}
            for v in rows.specials
        ],
    )


def _cut(value: str | None, size: int) -> str | None:
    return value[:size] if value is not None else None


# Public aliases for other storage modules (the bulk loader stamps versions exactly as `put` does).
stamp = _stamp
