"""SQLite: a bulk load's write-ahead log copied back into the database file while the load goes on.

In WAL mode a commit appends pages to the `-wal` file, and a checkpoint copies them into the database file
and syncs it. The loader's writer checkpoints rarely (`bulk._SQLITE_LOAD_PRAGMAS`), so the log of a whole
seed (110 MB for `openpayer seed --members 200`) was copied and synced when the load's last connection
closed: 0.23 s after its last batch, on one core, the rest idle. `BackgroundCheckpoint.poke` after a commit
starts a PASSIVE checkpoint on a thread of its own (the driver lets go of the interpreter lock while SQLite
works), unless one is still running: it copies what is committed, never waits for the writer nor makes it
wait, and the close finds little left to copy.
"""

from __future__ import annotations

import sqlite3
import threading

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError


class BackgroundCheckpoint:
    """PASSIVE checkpoints of a SQLite database, one at a time, on a thread; nothing on PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.enabled = engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        """Start a checkpoint of what is committed now, unless one is running."""
        if not self.enabled or (self._thread is not None and self._thread.is_alive()):
            return
        self._thread = threading.Thread(target=self._checkpoint, name="openpayer-wal-checkpoint", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Let the running checkpoint finish (before the connections close, or the process ends)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _checkpoint(self) -> None:
        try:
            raw = self.engine.raw_connection()  # no transaction: a checkpoint cannot run inside one
            try:
                raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                raw.close()
        except (SQLAlchemyError, sqlite3.Error):
            return  # only the copy is put off: the next checkpoint, or the last close, makes it
