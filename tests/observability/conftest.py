"""Observability tests: a server process of our own when the test reads what the real process writes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from tests.live import free_port

OPENPAYER = Path(sys.executable).parent / "openpayer"


def server_env(home: Path, database_url: str, secret: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENPAYER_")}
    env.update(
        OPENPAYER_HOME=str(home),
        OPENPAYER_DATABASE_URL=database_url,
        OPENPAYER_SECRET_KEY=secret,
        **{f"OPENPAYER_{k.upper()}": v for k, v in settings.items()},
    )
    return env


@contextmanager
def running_server(env: dict[str, str], log_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`openpayer serve` on a free loopback port, its stderr (the logs) written to `log_path`; stopped at the
    end, so that the log is complete when the block exits."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(OPENPAYER), "serve", "--no-migrate", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise AssertionError(f"the server exited: {log_path.read_text()}")
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError("the server did not start within 60 s")
                time.sleep(0.2)
            yield base, process
        finally:
            process.terminate()
            process.wait(timeout=30)
