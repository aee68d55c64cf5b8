"""`openpayer serve`: run the HTTP server (uvicorn) on the configured host and port."""

from __future__ import annotations

import typer
import uvicorn
from rich.console import Console

from openpayer.cli.worker import start_job_runner
from openpayer.config import get_settings
from openpayer.migrate import upgrade
from openpayer.observability.logs import configure_logging

console = Console()


def serve(
    host: str = typer.Option(None, help="Interface to bind (default OPENPAYER_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default OPENPAYER_PORT or 8000)."),
    workers: int = typer.Option(1, help="Worker processes."),
    migrate: bool = typer.Option(True, help="Apply pending migrations before serving."),
) -> None:
    """Serve the platform: /{env}/fhir, /{env}/directory, and the operations endpoints."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    bind_host = host or settings.host
    bind_port = port or settings.port
    problem = settings.public_base_url_problem(bind_host)
    if problem:
        console.print(f"[red]Refusing to start:[/red] {problem}", highlight=False)
        raise typer.Exit(1)
    if migrate:
        upgrade(settings)
    for env in settings.environments:
        console.print(
            f"[bold]{env}[/bold]: http://{bind_host}:{bind_port}/{env}/fhir  "
            f"http://{bind_host}:{bind_port}/{env}/directory"
        )
    jobs = start_job_runner(settings) if settings.jobs_in_serve else None
    try:
        uvicorn.run(
            "openpayer.asgi:app",
            host=bind_host,
            port=bind_port,
            workers=workers,
            log_level=settings.log_level,
            log_config=None,  # our root handler formats uvicorn's lines too (observability.logs)
            # One `request` event per request comes from the application (route template, no path: URLs
            # of member-data requests carry ids); X-Forwarded-* are read per OPENPAYER_TRUSTED_PROXIES.
            access_log=False,
            proxy_headers=False,
        )
    finally:
        if jobs is not None:
            jobs.stop()
