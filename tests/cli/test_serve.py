"""`openpayer serve`: several worker processes, each listening on a TCP socket of its own on the one address
(`SO_REUSEPORT`), with TCP_NODELAY on accepted connections."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop

from openpayer.cli.serve import bind_per_worker_socket, bind_tcp_socket
from openpayer.config import Settings


async def _nodelay_of_accepted_connection(sock: socket.socket) -> int:
    """Accept one connection on `sock` with the running event loop; the option as set on the server side."""
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted = transport.get_extra_info("socket")
            seen.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
    _reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
    try:
        return await asyncio.wait_for(seen, timeout=5)
    finally:
        writer.close()
        server.close()


Runner = Callable[[Coroutine[Any, Any, int]], int]


def _in_a_thread(run: Runner, sock: socket.socket) -> int:
    """Run the probe on an event loop of its own thread (another test may leave a loop running here)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: run(_nodelay_of_accepted_connection(sock))).result(timeout=60)


@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_connections_accepted_on_the_shared_socket_have_tcp_nodelay(run: Runner) -> None:
    sock = bind_tcp_socket("127.0.0.1", 0)
    assert sock.proto == socket.IPPROTO_TCP
    assert _in_a_thread(run, sock) != 0


def test_a_socket_as_uvicorn_binds_it_for_workers_gets_no_nodelay_from_asyncio() -> None:
    """Why the socket is recreated: protocol 0 (uvicorn's own `bind_socket`) leaves Nagle's algorithm on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    assert _in_a_thread(asyncio.run, sock) == 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


Inspect = Callable[[int, int], None]


def _serve_env(settings: Settings) -> dict[str, str]:
    return dict(
        os.environ,
        OPENPAYER_HOME=str(settings.home),
        OPENPAYER_DATABASE_URL=settings.resolved_database_url,
        OPENPAYER_SECRET_KEY="test-secret",
        COLUMNS="200",
    )


def _serve(
    settings: Settings,
    *args: str,
    workers: int,
    cores: set[int] | None = None,
    inspect: Inspect | None = None,
) -> tuple[str, str]:
    """Run `openpayer serve` until its `workers` have started, then ask /metadata twice over one keep-alive
    connection (and `inspect(server pid, port)`); its output and the answer's resource type."""
    port = _free_port()
    env = _serve_env(settings)
    command = [sys.executable, "-m", "openpayer.cli.main", "serve", "--port", str(port), "--no-migrate"]
    preexec = (lambda: os.sched_setaffinity(0, cores)) if cores else None
    log = settings.home / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [*command, *args], env=env, stdout=out, stderr=subprocess.STDOUT, text=True, preexec_fn=preexec
        )
    try:
        # Generous: each worker imports and builds the application, on a machine other jobs may be loading.
        deadline = time.monotonic() + 300
        while log.read_text().count("Application startup complete") < workers:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not start:\n" + log.read_text()
            time.sleep(0.5)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            first = client.get("/sandbox/fhir/metadata")
            second = client.get("/sandbox/fhir/metadata")  # the same keep-alive connection
        assert first.status_code == second.status_code == 200
        body = second.json()["resourceType"]
        if inspect is not None:
            inspect(server.pid, port)
    finally:
        server.terminate()
        server.wait(timeout=120)
    return log.read_text(), body


def test_serve_with_two_workers_answers(settings: Settings) -> None:
    output, body = _serve(settings, "--workers", "2", workers=2)
    assert body == "CapabilityStatement"
    assert "2 worker processes" in output
    assert output.count("Application startup complete") == 2


def _listening_sockets(port: int) -> set[str]:
    """The inodes of the sockets listening on `port` (Linux's /proc/net tables)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                found.add(fields[9])
    return found


def _sockets_of(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _children_of(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
def test_each_worker_listens_on_a_socket_of_its_own(settings: Settings) -> None:
    """So the kernel spreads connections that arrive together across the workers, where one shared socket
    let the first worker to wake accept them all."""
    seen: dict[str, Any] = {}

    def inspect(supervisor: int, port: int) -> None:
        # uvicorn logs "startup complete" just before its worker listens: wait for both to be listening.
        deadline = time.monotonic() + 60
        while True:
            listening = _listening_sockets(port)
            seen["listening"] = listening
            seen["supervisor"] = _sockets_of(supervisor) & listening
            seen["workers"] = [_sockets_of(child) & listening for child in _children_of(supervisor)]
            if len(listening) >= 2 or time.monotonic() > deadline:
                return
            time.sleep(0.2)

    _serve(settings, "--workers", "2", workers=2, inspect=inspect)
    workers = [inodes for inodes in seen["workers"] if inodes]
    assert len(workers) == 2
    assert all(len(inodes) == 1 for inodes in workers)
    assert workers[0] != workers[1]
    assert seen["listening"] == workers[0] | workers[1]
    assert seen["supervisor"] == set()  # it reserves the address, and listens on nothing


def test_workers_do_not_join_a_server_already_on_the_port(settings: Settings) -> None:
    taken = bind_per_worker_socket("127.0.0.1", 0)  # as another `serve --workers N` reserves its port
    port = taken.getsockname()[1]
    worker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    worker.bind(("127.0.0.1", port))
    worker.listen()
    command = ["serve", "--workers", "2", "--port", str(port), "--no-migrate"]
    try:
        result = subprocess.run(
            [sys.executable, "-m", "openpayer.cli.main", *command],
            env=_serve_env(settings),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        worker.close()
        taken.close()
    assert result.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in result.stdout
    assert "Traceback" not in result.stderr


def test_serve_runs_one_worker_per_available_core_by_default(settings: Settings) -> None:
    first_core = min(os.sched_getaffinity(0))
    output, body = _serve(settings, cores={first_core}, workers=1)
    assert body == "CapabilityStatement"
    assert "1 worker process" in output


def test_serve_refuses_zero_workers(settings: Settings, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "openpayer.cli.main", "serve", "--workers", "0", "--no-migrate"],
        env=dict(os.environ, OPENPAYER_HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_a_server_process_freezes_its_start_up_objects_out_of_the_collector(tmp_path: Path) -> None:
    """What `openpayer.asgi` (every server process's entry point) leaves the cyclic collector."""
    probe = "import gc, openpayer.asgi as a; print(gc.get_threshold()[0], gc.get_freeze_count() > 10_000)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=dict(os.environ, OPENPAYER_HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["7000", "True"]
