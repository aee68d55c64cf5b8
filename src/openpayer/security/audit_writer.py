"""Writes buffered records in the background (the audit log's events, clients' last activity), so that
recording them adds no write to a request.

An ASGI middleware around the application: after a request, when a buffer is due (`due()`), it is written on
the event loop's thread pool (at most one write at a time; the request does not wait); while the server runs,
at least every `AUDIT_MAX_AGE` seconds even when no request comes; at shutdown (the ASGI lifespan) the rest
is written before the application stops. A failed write keeps the records for the next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openpayer.security.audit import AUDIT_MAX_AGE
from openpayer.web.threads import run_blocking


class Buffered(Protocol):
    """Records kept in memory and written in batches (`AuditLog`, `oauth.activity.ActivityLog`)."""

    def due(self) -> bool: ...

    def flush(self) -> None: ...


class AuditWriter:
    def __init__(self, app: ASGIApp, *, buffers: Sequence[Buffered]) -> None:
        self.app = app
        self.buffers = tuple(buffers)
        self._periodic: asyncio.Task[None] | None = None
        self._writing: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan(receive), send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http" and self._due():
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
            if self._due():
                await self._write()

    def _write_soon(self) -> None:
        if self._writing is None or self._writing.done():
            self._writing = asyncio.get_running_loop().create_task(self._write())

    def _due(self) -> bool:
        return any(buffer.due() for buffer in self.buffers)

    async def _write(self) -> None:
        """Every buffer, in one hand-off to the thread pool (each hand-off wakes a thread and contends for
        the GIL with the requests being served)."""
        await run_blocking(self._flush_all)

    def _flush_all(self) -> None:
        for buffer in self.buffers:
            try:
                buffer.flush()
            except Exception:  # noqa: S112 - flush() logged it and kept the records for the next write
                continue
