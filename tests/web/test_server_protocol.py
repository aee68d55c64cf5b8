"""The HTTP protocol `openpayer serve` runs: a response's status line, headers and body reach the socket in
one write, and nothing is held back (HEAD, `Connection: close`, streamed and large bodies)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx
import pytest
from tests.live import live_servers

from openpayer.web.server_protocol import FLUSH_AT, CoalescingHttpToolsProtocol

CHUNK = 40 * 1024
seen_at_once: list[bool] = []


class _Recorded:
    """The connection's real transport, each write that reaches it recorded."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class RecordingProtocol(CoalescingHttpToolsProtocol):
    writes: ClassVar[list[bytes]] = []

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Recorded(transport, self.writes))  # type: ignore[arg-type]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    if scope["path"] == "/stream":
        start = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        await send(start)
        for index in range(3):  # one chunk a turn of the loop
            await send({"type": "http.response.body", "body": bytes([65 + index]) * CHUNK, "more_body": True})
            await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b"Z" * (3 * FLUSH_AT), "more_body": True})
        seen_at_once.append(b"ZZZZ" in RecordingProtocol.writes[-1])  # before the loop turned
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    body = b'{"ok":true}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def server() -> Iterator[str]:
    with live_servers() as start:
        url = start(app, http=RecordingProtocol)
        RecordingProtocol.writes.clear()
        seen_at_once.clear()
        yield url


def test_headers_and_body_leave_in_one_write(server: str) -> None:
    with httpx.Client(timeout=5) as client:
        first = client.get(f"{server}/small")
        second = client.get(f"{server}/small")  # the same kept-alive connection
    assert first.json() == second.json() == {"ok": True}
    assert len(RecordingProtocol.writes) == 2
    for write in RecordingProtocol.writes:
        assert write.startswith(b"HTTP/1.1 200 OK\r\n")
        assert write.endswith(b'\r\n\r\n{"ok":true}')


def test_a_head_response_and_a_closing_connection_are_sent_at_once(server: str) -> None:
    with httpx.Client(timeout=5) as client:
        head = client.head(f"{server}/small")
        closing = client.get(f"{server}/small", headers={"connection": "close"})
    assert head.status_code == 200
    assert head.content == b""
    assert closing.json() == {"ok": True}
    assert [w.endswith(b"\r\n\r\n") for w in RecordingProtocol.writes] == [True, False]


def test_a_streamed_body_arrives_whole_and_a_large_one_without_waiting_for_the_turn(server: str) -> None:
    with httpx.Client(timeout=5) as client:
        response = client.get(f"{server}/stream")
    assert response.content == b"A" * CHUNK + b"B" * CHUNK + b"C" * CHUNK + b"Z" * (3 * FLUSH_AT)
    writes = RecordingProtocol.writes
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"AAAA" in writes[0]  # the headers left with the first chunk
    assert [w[-8:] for w in writes[1:3]] == [b"BBBBBB\r\n", b"CCCCCC\r\n"]  # one a turn
    assert seen_at_once == [True]
    assert writes[-1] == b"0\r\n\r\n"
