"""Writes the audit log's buffered events in the background, so that auditing adds no write to a request.

An ASGI middleware around the application: after a request, when a batch is due (`AuditLog.due`), the events
are written on the event loop's thread pool (at most one write at a time; the request does not wait); while
the server runs, at least every `AUDIT_MAX_AGE` seconds even when no request comes; at shutdown (the ASGI
lifespan) the rest are written before the application stops. A failed write keeps the events for the next.
"""

from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openpayer.security.audit import AUDIT_MAX_AGE, AuditLog


class AuditWriter:
    def __init__(self, app: ASGIApp, *, audit: AuditLog) -> None:
        self.app = app
        self.audit = audit
        self._periodic: asyncio.Task[None] | None = None
        self._writing: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan(receive), send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http" and self.audit.due():
                self._write_soon()

    def _lifespan(self, receive: Receive) -> Receive:
        async def receive_and_write() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup" and self._periodic is None:
                self._periodic = asyncio.get_running_loop().create_task(self._write_periodically())
            elif message["type"] == "lifespan.shutdown":
                if self._periodic is not None:
                    self._periodic.cancel()
                    self._periodic = None
                await self._write()
            return message

        return receive_and_write

    async def _write_periodically(self) -> None:
        while True:
            await asyncio.sleep(AUDIT_MAX_AGE)
            if self.audit.due():
                await self._write()

    def _write_soon(self) -> None:
        if self._writing is None or self._writing.done():
            self._writing = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        try:
            await run_in_threadpool(self.audit.flush)
        except Exception:  # flush() logged it and kept the events for the next write
            return
