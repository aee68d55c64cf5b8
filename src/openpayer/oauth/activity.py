"""Per-client activity for the inactivity policy: the last SMART authorization and the last FHIR API call.

Why in memory first: a call is recorded on every FHIR request, so it must cost a dictionary look-up, not a
write. `called` keeps at most one pending timestamp per (environment, client) and ignores calls within
`coalesce_seconds` (60) of the last one it kept, so the stored `last_call_at` is accurate to a minute and a
busy client causes at most one row update a minute per process. `authorized` (a token issued by the
authorization-code or client-credentials grant; refresh does not count) is coalesced the same way: a backend
asking for a token on every job must not cost a background write per token. Pending marks are
written by `flush`, which the bearer guard runs with the audit log's batches (at least every
`AUDIT_MAX_AGE` seconds while the server runs, and at shutdown). Times are the one clock's seconds.

Readers (the policy in `openpayer.policy`) call `last_seen`, which flushes this process's pending marks first.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, case, select
from sqlalchemy.dialects import postgresql, sqlite

from openpayer.clock import Clock
from openpayer.db import write_transaction
from openpayer.oauth.models import oauth_activity

log = logging.getLogger("openpayer.activity")
Key = tuple[str, str]  # (env, client_id)


@dataclass(frozen=True, slots=True)
class Seen:
    """When a client was last active in one environment (epoch seconds; None: never)."""

    last_authorized_at: int | None
    last_call_at: int | None


class ActivityLog:
    def __init__(self, engine: Engine, clock: Clock, coalesce_seconds: int = 60) -> None:
        self.engine = engine
        self.clock = clock
        self.coalesce_seconds = coalesce_seconds
        self._kept: dict[Key, int] = {}  # the last call time kept per key (pending or written)
        self._kept_authorized: dict[Key, int] = {}  # the same for authorizations
        self._calls: dict[Key, int] = {}
        self._authorizations: dict[Key, int] = {}
        self._lock = threading.Lock()
        # Held for a whole flush, so that a reader's flush waits for one already writing in the background
        # (otherwise `last_seen` could find nothing pending and read before that write commits).
        self._flushing = threading.Lock()

    # ---- recording (hot path) ------------------------------------------------------------------------
    def called(self, env: str, client_id: str) -> None:
        """A request carrying a valid access token of `client_id` (any FHIR call, /metadata included)."""
        key = (env, client_id)
        now = self.clock.now()
        kept = self._kept.get(key)
        if kept is not None and 0 <= now - kept < self.coalesce_seconds:
            return
        with self._lock:
            self._kept[key] = now
            self._calls[key] = now

    def authorized(self, env: str, client_id: str) -> None:
        """A token issued to `client_id` by the authorization-code or client-credentials grant."""
        key = (env, client_id)
        now = self.clock.now()
        kept = self._kept_authorized.get(key)
        if kept is not None and 0 <= now - kept < self.coalesce_seconds:
            return
        with self._lock:
            self._kept_authorized[key] = now
            self._authorizations[key] = now

    def due(self) -> bool:
        return bool(self._calls or self._authorizations)

    # ---- writing ---------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write the pending marks (one upsert per key); on failure they are kept for the next flush."""
        with self._flushing:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            calls, self._calls = self._calls, {}
            auths, self._authorizations = self._authorizations, {}
        if not calls and not auths:
            return
        rows = [
            {"env": k[0], "client_id": k[1], "last_call_at": calls.get(k), "last_authorized_at": auths.get(k)}
            for k in calls.keys() | auths.keys()
        ]
        try:
            with write_transaction(self.engine) as conn:
                for row in rows:
                    conn.execute(_upsert(conn, row))
        except Exception:
            log.exception("activity flush failed; %d marks kept for retry", len(rows))
            with self._lock:
                for key, at in calls.items():
                    self._calls[key] = max(at, self._calls.get(key, at))
                for key, at in auths.items():
                    self._authorizations[key] = max(at, self._authorizations.get(key, at))
            raise

    # ---- reading ---------------------------------------------------------------------------------------
    def last_seen(self, conn: Connection | None = None) -> dict[Key, Seen]:
        """Every recorded client's activity, by (env, client_id), after writing this process's marks."""
        self.flush()
        t = oauth_activity
        query = select(t.c.env, t.c.client_id, t.c.last_authorized_at, t.c.last_call_at)
        if conn is None:
            with self.engine.connect() as own:
                rows = own.execute(query).all()
        else:
            rows = conn.execute(query).all()
        return {(r.env, r.client_id): Seen(r.last_authorized_at, r.last_call_at) for r in rows}


def _upsert(conn: Connection, row: dict[str, Any]) -> Any:
    """Insert the key's row or move its timestamps forward (never back: hosts flush in any order)."""
    t = oauth_activity
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(t).values(**row)
    new = stmt.excluded

    def later(column: str) -> Any:
        current, incoming = t.c[column], new[column]
        return case(
            (incoming.is_(None), current),
            (current.is_(None), incoming),
            (incoming > current, incoming),
            else_=current,
        )

    return stmt.on_conflict_do_update(
        index_elements=[t.c.env, t.c.client_id],
        set_={"last_call_at": later("last_call_at"), "last_authorized_at": later("last_authorized_at")},
    )
