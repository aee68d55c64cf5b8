"""uvicorn's HTTP protocol with each response's writes sent to the socket as one.

uvicorn writes a response's status line and headers, then its body, as two `transport.write` calls, and uvloop
sends each at once: two `write` system calls and, with `TCP_NODELAY`, two TCP segments for every response. On
loopback the sender's CPU also runs the receiving side's stack, and Node's HTTP server (to which the token
benchmark compares us) sends headers and a body written together as one segment. `CoalescedWrites` keeps the
writes of one turn of the event loop and sends them together at the end of it, or at once when they reach
`FLUSH_AT` bytes (so a streamed body still meets uvloop's flow control) or the connection closes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

FLUSH_AT = 64 * 1024


class CoalescedWrites:
    """A connection's transport whose writes in one turn of the event loop leave as one system call."""

    __slots__ = ("_loop", "_pending", "_pending_bytes", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None
        self._pending_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        chunk = bytes(data)
        if self._pending is None:
            self._pending = [chunk]
            self._pending_bytes = len(chunk)
            self._loop.call_soon(self.flush)
        else:
            self._pending.append(chunk)
            self._pending_bytes += len(chunk)
        if self._pending_bytes >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        # pause_reading, get_extra_info, abort, set_protocol...: the connection's own transport.
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, its transport's writes coalesced (see the module docstring)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescedWrites(transport, self.loop))  # type: ignore[arg-type]
