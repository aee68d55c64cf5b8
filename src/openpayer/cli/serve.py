"""`openpayer serve`: run the HTTP server (uvicorn) on the configured host and port, one worker per core.

Two things about uvicorn's listening socket for several workers are mended here:

- uvicorn binds it as `socket.socket(family)`: protocol 0, not `IPPROTO_TCP`. asyncio sets `TCP_NODELAY`
  only on connections accepted from a socket whose protocol is TCP, so every keep-alive response after the
  first waited for Nagle's algorithm to meet the client's delayed ACK (~40 ms a request: two workers served
  4-10x less than one). Our sockets are bound as TCP; uvloop (from `uvicorn[standard]`) sets the option on
  accepted connections in any case.
- All workers accepted from one shared socket, and the first to wake accepts every connection waiting (the
  event loop accepts until none is left). Connections that arrive together, as a proxy's or a load
  balancer's pool of keep-alive connections does, then all went to one worker, which served them alone for
  as long as they lived: in 4 of 20 starts of two workers under `wrk -c8`, all 8 connections were on one
  worker, at half the throughput. On Linux each worker now listens on a socket of its own, bound to the same
  address with `SO_REUSEPORT`, and the kernel spreads new connections across them by their addresses' hash.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

import typer
import uvicorn
from rich.console import Console
from uvicorn.supervisors import Multiprocess

from openpayer.cli.context import command_services
from openpayer.cli.worker import start_job_runner
from openpayer.config import get_settings
from openpayer.migrate import upgrade
from openpayer.observability.logs import configure_logging

console = Console()
log = logging.getLogger("openpayer")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, so `taskset` and container pinning count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return max(1, os.cpu_count() or 1)


def _tcp_socket(family: socket.AddressFamily, *, reuse_port: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return sock


def _bind_or_exit(sock: socket.socket, host: str, port: int) -> None:
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        console.print(f"[red]Cannot listen on {host}:{port}: {exc.strerror or exc}[/red]")
        sys.exit(1)


def bind_tcp_socket(host: str, port: int) -> socket.socket:
    """A listening socket created with protocol `IPPROTO_TCP`, inheritable by the worker processes."""
    sock = _tcp_socket(socket.AF_INET6 if ":" in host else socket.AF_INET, reuse_port=False)
    _bind_or_exit(sock, host, port)
    sock.set_inheritable(True)
    return sock


def listen_alongside(family: socket.AddressFamily, address: tuple[str, int]) -> socket.socket:
    """In a worker process: a socket of its own on the address its supervisor reserved (uvicorn listens)."""
    sock = _tcp_socket(family, reuse_port=True)
    sock.bind(address)
    return sock


class PerWorkerSocket(socket.socket):
    """The address the workers listen on, reserved by the supervisor (bound with `SO_REUSEPORT`, never
    listening, so the kernel gives it no connection). uvicorn sends its sockets to each worker process it
    starts, restarts included, by pickling them; this one arrives as a new socket of the worker's own
    (`listen_alongside`), not as a copy of a shared one (see the module docstring)."""

    def __reduce__(self) -> tuple[Any, tuple[socket.AddressFamily, tuple[str, int]]]:
        host, port = self.getsockname()[:2]
        return listen_alongside, (self.family, (host, port))


def bind_per_worker_socket(host: str, port: int) -> socket.socket:
    """Reserve `host:port` for workers with a socket each. A socket bound without `SO_REUSEPORT` is tried
    first, so that a server already listening there (another OpenPayer's workers too) is refused here, not
    silently joined."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = _tcp_socket(family, reuse_port=False)
    _bind_or_exit(probe, host, port)
    port = probe.getsockname()[1]
    probe.close()
    sock = PerWorkerSocket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    _bind_or_exit(sock, host, port)
    return sock


class TcpNoDelayConfig(uvicorn.Config):
    """uvicorn's configuration with its listening socket bound as TCP, one per worker where there are
    several on Linux (see the module docstring)."""

    def bind_socket(self) -> socket.socket:
        # Linux spreads connections over the sockets sharing a port; macOS and the BSDs' `SO_REUSEPORT`
        # does not (FreeBSD's is `SO_REUSEPORT_LB`), so there the workers keep one shared socket.
        if self.workers > 1 and sys.platform == "linux":
            return bind_per_worker_socket(self.host, self.port)
        return bind_tcp_socket(self.host, self.port)


def serve(
    host: str = typer.Option(None, help="Interface to bind (default OPENPAYER_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default OPENPAYER_PORT or 8000)."),
    workers: int = typer.Option(
        None, min=1, help="Worker processes (default: the cores this process may run on)."
    ),
    migrate: bool = typer.Option(True, help="Apply pending migrations before serving."),
) -> None:
    """Serve the platform: /{env}/fhir, /{env}/directory, and the operations endpoints."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    bind_host = host or settings.host
    bind_port = port or settings.port
    worker_count = workers or available_cores()
    problem = settings.public_base_url_problem(bind_host)
    if problem:
        console.print(f"[red]Refusing to start:[/red] {problem}", highlight=False)
        raise typer.Exit(1)
    if migrate:
        upgrade(settings)
    # Checked here, before any worker starts: with several workers uvicorn's supervisor would only see its
    # workers fail their start-up and go on, and the command would not say why or fail.
    from openpayer.app import startup_problems  # here: the other commands do not import the application

    with command_services(settings) as services:
        problems = startup_problems(services)
    for problem in problems:
        log.critical("refusing to start: %s", problem)  # as the application itself says it
    if problems:
        raise typer.Exit(1)
    for env in settings.environments:
        console.print(
            f"[bold]{env}[/bold]: http://{bind_host}:{bind_port}/{env}/fhir  "
            f"http://{bind_host}:{bind_port}/{env}/directory"
        )
    config = TcpNoDelayConfig(
        "openpayer.asgi:app",
        host=bind_host,
        port=bind_port,
        workers=worker_count,
        log_level=settings.log_level,
        log_config=None,  # our root handler formats uvicorn's lines too (observability.logs)
        # One `request` event per request comes from the application (route template, no path: URLs
        # of member-data requests carry ids); X-Forwarded-* are read per OPENPAYER_TRUSTED_PROXIES.
        access_log=False,
        proxy_headers=False,
        # uvicorn's httptools protocol, a response's headers and body sent in one write (web.server_protocol)
        http="openpayer.web.server_protocol:CoalescingHttpToolsProtocol",
        # uvicorn restarts a worker that does not answer its health check in time; a worker still importing
        # the application on a loaded host cannot, so the default 5 s restarted workers forever.
        timeout_worker_healthcheck=60,
    )
    sock = config.bind_socket()
    console.print(f"{worker_count} worker process{'es' if worker_count > 1 else ''}")
    jobs = start_job_runner(settings) if settings.jobs_in_serve else None
    try:
        if worker_count == 1:
            uvicorn.Server(config).run(sockets=[sock])
        else:
            Multiprocess(config, sockets=[sock]).run()
    finally:
        if jobs is not None:
            jobs.stop()
