"""Rows kept in memory and inserted in batches: what the audit log and the security event stream share.

A row waits at most `max_age` seconds or until `batch` rows are pending (`due`); the background writer
(`audit_writer.py`) flushes when due, and readers flush first. A failed insert keeps the rows, in order,
for the next flush; a flush waits for one already writing, so a reader never reads before it commits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, Table

from openpayer.db import insert_rows, write_transaction

BATCH = 500
MAX_AGE = 2.0  # seconds a row may wait in memory (the background writer's period)


class RowBuffer:
    def __init__(
        self,
        engine: Engine,
        table: Table,
        log: logging.Logger,
        *,
        batch: int = BATCH,
        max_age: float = MAX_AGE,
        on_written: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.table = table
        self.log = log
        self.batch = batch
        self.max_age = max_age
        self.on_written = on_written  # told of each batch once it is committed
        self._pending: list[dict[str, Any]] = []
        self._oldest = 0.0
        self._lock = threading.Lock()
        self._flushing = threading.Lock()

    def append(self, row: dict[str, Any]) -> None:
        with self._lock:
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.append(row)

    def due(self) -> bool:
        return bool(self._pending) and (
            len(self._pending) >= self.batch or time.monotonic() - self._oldest >= self.max_age
        )

    def flush(self) -> int:
        """Insert the pending rows; how many. On failure they are kept for the next flush (the log says
        why, never what: rows carry member and client identifiers)."""
        with self._flushing:
            with self._lock:
                rows, self._pending = self._pending, []
            if not rows:
                return 0
            try:
                with write_transaction(self.engine) as conn:
                    insert_rows(conn, self.table, rows)  # COPY on PostgreSQL
            except Exception:
                self.log.exception("%s flush failed; %d rows kept for retry", self.table.name, len(rows))
                with self._lock:
                    self._pending[:0] = rows
                raise
            if self.on_written is not None:
                self.on_written(rows)
            return len(rows)
