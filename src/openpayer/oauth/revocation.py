"""Suspensions and revocations reach every host within a second: each process's caches of token checks and
clients are dropped when any process changes a client's status, revokes a token by id (RFC 7009) or revokes
a consent grant (a member's disconnect, a reused refresh token).

The guard caches a token's check for `auth_token_cache_seconds` (5 s) and the token endpoint caches
clients, per process. A status change (`ClientStore.set_status_in`: suspension, restore, removal) or a
revocation (`TokenStore.revoke_ids`, `GrantStore.revoke_in`, through their listeners) raises a generation
counter (`oauth_revocation`, one row) in the same transaction and publishes on the Redis channel
`openpayer:oauth:revocation` when `OPENPAYER_REDIS_URL` is set. Every serving process runs a
watcher thread (started with the application, `start`/`stop`) that

- listens on that channel (when Redis is configured) and drops its caches on each message, within
  milliseconds; and
- reads the counter every `auth_revocation_poll_seconds` (0.5 s, at most 1 s) and drops its caches when it
  moved. This is the guarantee: it also covers a host whose Redis is down or absent, and a message that
  arrived before the change committed (the publish happens inside the transaction).

A token check read from the database while a drop happens is not cached (`TokenStore`'s epoch), so a
check that saw the old status cannot outlive the drop. Nothing here is needed for correctness within the
process that made the change: it drops its own caches at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from openpayer.clock import Clock
from openpayer.oauth.models import oauth_revocation

log = logging.getLogger(__name__)

CHANNEL = "openpayer:oauth:revocation"


class RevocationFeed:
    def __init__(
        self, engine: Engine, clock: Clock, *, redis_url: str | None = None, poll_seconds: float = 0.5
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.redis_url = redis_url
        self.poll_seconds = poll_seconds
        self.listeners: list[Callable[[], None]] = []  # drop a cache (TokenStore.forget_all, ...)
        self._seen: int | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._redis: Any = None

    # ---- the side that changes a client ---------------------------------------------------------------
    def raise_generation(self, conn: Connection) -> None:
        """In the caller's transaction: move the counter, then tell the other processes through Redis."""
        table = oauth_revocation
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        now = self.clock.now()
        statement = dialect.insert(table).values(id=1, generation=1, changed_at=now)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=[table.c.id],
                set_={"generation": table.c.generation + 1, "changed_at": now},
            )
        )
        self._drop()
        self._publish()

    def _publish(self) -> None:
        if not self.redis_url:
            return
        try:
            self._client().publish(CHANNEL, b"1")
        except Exception:  # Redis down: the other hosts' polling sees the counter within a second
            log.warning("revocation: Redis publish failed; other hosts find out by polling")

    def _client(self) -> Any:
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(
                self.redis_url or "", socket_timeout=0.5, socket_connect_timeout=0.5
            )
        return self._redis

    # ---- the side that caches -------------------------------------------------------------------------
    def _drop(self) -> None:
        for listener in self.listeners:
            listener()

    def check(self) -> bool:
        """Read the counter once; drop the caches if it moved since the last read. Whether it moved."""
        with self.engine.connect() as conn:
            current = conn.execute(
                select(oauth_revocation.c.generation).where(oauth_revocation.c.id == 1)
            ).scalar()
        generation = int(current or 0)
        moved = self._seen is not None and generation != self._seen
        self._seen = generation
        if moved:
            self._drop()
        return moved

    def start(self) -> None:
        """Start the watcher threads of a serving process (idempotent)."""
        if self._threads:
            return
        self._stop.clear()
        try:
            self.check()
        except Exception:
            log.warning("revocation: the counter could not be read at start", exc_info=True)
        threads = [threading.Thread(target=self._poll, name="revocation-poll", daemon=True)]
        if self.redis_url:
            threads.append(threading.Thread(target=self._listen, name="revocation-listen", daemon=True))
        for thread in threads:
            thread.start()
        self._threads = threads

    def stop(self) -> None:
        self._stop.set()  # each thread wakes within `poll_seconds` (the listener within 0.5 s) and ends
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.check()
            except Exception:  # the database is away: keep trying; /readyz reports it
                log.warning("revocation: the counter could not be read", exc_info=True)

    def _listen(self) -> None:
        import redis

        while not self._stop.is_set():
            pubsub = None
            try:
                client = redis.Redis.from_url(self.redis_url or "", socket_connect_timeout=0.5)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                while not self._stop.is_set():
                    if pubsub.get_message(timeout=0.5) is not None:
                        self._drop()
            except Exception:
                if not self._stop.is_set():
                    log.warning("revocation: Redis subscription lost; polling covers it", exc_info=True)
                    self._stop.wait(1.0)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()
