"""How a command gets its services: from the composition root, released when the command ends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from openpayer.bootstrap import Services, build_services
from openpayer.config import Settings, get_settings


@contextmanager
def command_services(settings: Settings | None = None) -> Iterator[Services]:
    """The services of this command (one engine, one clock); the database pool is closed at the end."""
    services = build_services(settings or get_settings())
    try:
        yield services
    finally:
        services.close()


def check_env(settings: Settings, env: str) -> None:
    """A usage error (exit 2) naming the configured environments when `env` is not one of them."""
    if env not in settings.environments:
        raise typer.BadParameter(
            f"unknown environment {env!r}; configured: {', '.join(settings.environments)}"
        )
