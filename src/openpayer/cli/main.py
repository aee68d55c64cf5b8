"""`openpayer`: serve the platform, manage its database, load and seed data."""

from __future__ import annotations

import typer

from openpayer.cli import clients as client_commands
from openpayer.cli import db as db_commands
from openpayer.cli import keys as key_commands
from openpayer.cli import load as load_commands
from openpayer.cli import members as member_commands
from openpayer.cli import seed as seed_commands
from openpayer.cli import serve as serve_commands

app = typer.Typer(
    name="openpayer",
    help="OpenPayer: FHIR R4 Patient Access, Provider Directory and Formulary APIs for a US health plan.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(db_commands.app, name="db")
app.add_typer(client_commands.app, name="clients")
app.add_typer(member_commands.app, name="members")
app.add_typer(key_commands.app, name="keys")
app.command("serve")(serve_commands.serve)
app.command("load")(load_commands.load)
app.command("seed")(seed_commands.seed)


if __name__ == "__main__":  # pragma: no cover
    app()
