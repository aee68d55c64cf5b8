"""`openpayer`: serve the platform, manage its database, load and seed data."""

from __future__ import annotations

import typer
from pydantic import ValidationError
from rich.console import Console

from openpayer.cli import clients as client_commands
from openpayer.cli import db as db_commands
from openpayer.cli import email as email_commands
from openpayer.cli import healthcheck as healthcheck_command
from openpayer.cli import jobs as job_commands
from openpayer.cli import keys as key_commands
from openpayer.cli import load as load_commands
from openpayer.cli import members as member_commands
from openpayer.cli import policy as policy_commands
from openpayer.cli import report as report_commands
from openpayer.cli import security as security_commands
from openpayer.cli import seed as seed_commands
from openpayer.cli import serve as serve_commands
from openpayer.cli import staff as staff_commands
from openpayer.cli import worker as worker_commands
from openpayer.config import get_settings

app = typer.Typer(
    name="openpayer",
    help="OpenPayer: FHIR R4 Patient Access, Provider Directory and Formulary APIs for a US health plan.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def check_configuration() -> None:
    """Refuse to start on bad OPENPAYER_* settings, saying which and why, instead of a traceback."""
    try:
        get_settings()
    except ValidationError as exc:
        console = Console(stderr=True)
        console.print("[red]Invalid configuration:[/red]")
        for error in exc.errors():
            name = "OPENPAYER_" + "_".join(str(part) for part in error["loc"][:1]).upper()
            console.print(f"  {name}: {error['msg']}", markup=False)
        raise typer.Exit(2) from None


app.add_typer(db_commands.app, name="db")
app.add_typer(client_commands.app, name="clients")
app.add_typer(member_commands.app, name="members")
app.add_typer(key_commands.app, name="keys")
app.add_typer(staff_commands.app, name="staff")
app.add_typer(job_commands.app, name="jobs")
app.add_typer(email_commands.app, name="email")
app.add_typer(policy_commands.app, name="policy")
app.add_typer(report_commands.app, name="report")
app.add_typer(security_commands.app, name="security")
app.command("healthcheck")(healthcheck_command.healthcheck)
app.command("serve")(serve_commands.serve)
app.command("worker")(worker_commands.worker)
app.command("load")(load_commands.load)
app.command("seed")(seed_commands.seed)


if __name__ == "__main__":  # pragma: no cover
    app()
