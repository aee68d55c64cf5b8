"""`openpayer db`: schema migrations (Alembic)."""

from __future__ import annotations

import typer
from rich.console import Console

from openpayer.config import get_settings
from openpayer.migrate import current_revision, upgrade

app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)
console = Console()


@app.command("upgrade")
def upgrade_command(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    settings = get_settings()
    upgrade(settings, revision)
    console.print(f"[green]Database at revision {current_revision(settings)}[/green]")


@app.command("current")
def current_command() -> None:
    """Print the database's current revision."""
    console.print(current_revision(get_settings()) or "(empty database)")
