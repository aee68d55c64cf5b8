"""What tests that need a real listening server share: a free loopback port, and ASGI apps run by uvicorn
in a thread for the length of a test."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_servers(lifespan: Literal["on", "off"] = "off") -> Iterator[Callable[[Any], str]]:
    """Yields `start(app, **options)`, which serves an ASGI app on a free loopback port (`options`: more of
    uvicorn's configuration) and returns its base URL;
    every server started is stopped on exit. With `lifespan="on"` the app's startup runs (its background
    writers and jobs)."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Any, **options: Any) -> str:
        port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan, **options
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread))
        deadline = time.monotonic() + 15
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        return f"http://127.0.0.1:{port}"

    try:
        yield start
    finally:
        for server, thread in running:
            server.should_exit = True
            thread.join(timeout=10)
