"""`openpayer worker`: run the job runner on its own, on a host that serves no HTTP."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import typer
from prometheus_client import start_http_server
from rich.console import Console

from openpayer.bootstrap import build_services
from openpayer.cli.context import command_services
from openpayer.config import Settings, get_settings
from openpayer.jobs import BackgroundRunner
from openpayer.migrate import upgrade
from openpayer.observability.logs import configure_logging

console = Console()


def worker(
    once: bool = typer.Option(False, "--once", help="Run what is due now, then exit."),
    migrate: bool = typer.Option(False, help="Apply pending migrations first (the app hosts usually do)."),
    metrics_port: int = typer.Option(
        None,
        "--metrics-port",
        help="Serve this worker's Prometheus metrics (job runs, emails) on OPENPAYER_HOST:PORT/metrics.",
    ),
) -> None:
    """Run scheduled and queued jobs until stopped (SIGINT or SIGTERM finishes the current job first)."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)  # JSON lines, as on the app hosts
    if migrate:
        upgrade(settings)
    with command_services(settings) as services:
        background = services.background
        runner = background.runner
        if once:
            done = runner.run_once()
            console.print(f"{done} run(s) done")
            return
        if metrics_port:
            # A worker host serves no HTTP, so /metrics of the app hosts never sees its counters.
            start_http_server(metrics_port, addr=settings.host)
            console.print(f"metrics: http://{settings.host}:{metrics_port}/metrics", highlight=False)
        stop = threading.Event()

        def request_stop(signum: int, _frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        jobs = ", ".join(d.name for d in background.registry)
        console.print(f"worker {runner.host} ready: {jobs}", highlight=False, soft_wrap=True)
        runner.run_forever(stop, settings.jobs_poll_seconds)


def start_job_runner(settings: Settings) -> BackgroundRunner:
    """The runner on a thread of `openpayer serve` (one per serve command, whatever its worker count)."""
    background = BackgroundRunner(build_services(settings).background.runner, settings.jobs_poll_seconds)
    background.start()
    console.print(
        f"jobs: runner {background.runner.host} started (OPENPAYER_JOBS_IN_SERVE=false turns it off)"
    )
    return background
