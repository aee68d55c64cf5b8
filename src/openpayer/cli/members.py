"""`openpayer members`: link member logins to Patients (operators' path until identity federation)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.exc import IntegrityError

from openpayer.cli.context import check_env, command_services
from openpayer.config import get_settings
from openpayer.db import read_connection

app = typer.Typer(help="Manage member logins.", no_args_is_help=True)
console = Console()


@app.command("create")
def create(
    env: Annotated[str, typer.Argument(help="Environment.")],
    username: Annotated[str, typer.Option("--username")],
    password: Annotated[str, typer.Option("--password", prompt=True, hide_input=True)],
    patient: Annotated[str, typer.Option("--patient", help="The Patient id this login reaches.")],
    totp: Annotated[
        bool, typer.Option("--totp", help="Enrol a TOTP second factor and print its secret.")
    ] = False,
) -> None:
    """Create a member login linked to Patient/PATIENT."""
    settings = get_settings()
    check_env(settings, env)
    try:
        with command_services(settings) as services:
            # A login whose Patient is missing could sign in and then find every read a 404.
            with read_connection(services.engine) as conn:
                if not services.fhir.repository.exists(conn, env, "Patient", patient):
                    raise typer.BadParameter(
                        f"there is no Patient/{patient} in {env}: load the member's records first"
                    )
            member = services.auth.members.create(env, username, password, patient)
            secret = services.auth.members.enroll_totp(env, username) if totp else None
    except ValueError as exc:  # the password rule it broke, with the minimum (never the password)
        raise typer.BadParameter(str(exc)) from exc
    except IntegrityError as exc:
        raise typer.BadParameter(f"the username {username!r} is taken in {env}") from exc
    console.print(f"member {member.username} (id {member.id}) -> Patient/{patient} in {env}")
    if secret:
        console.print(f"TOTP secret (shown once): {secret}")


@app.command("enroll-totp")
def enroll_totp(
    env: Annotated[str, typer.Argument()], username: Annotated[str, typer.Option("--username")]
) -> None:
    """Enrol (or replace) a member's TOTP second factor; prints the secret once."""
    try:
        with command_services() as services:
            secret = services.auth.members.enroll_totp(env, username)
    except LookupError as exc:
        raise typer.BadParameter(str(exc)) from exc
    console.print(f"TOTP secret (shown once): {secret}")


@app.command("seed-sandbox")
def seed_sandbox(
    env: Annotated[str, typer.Argument(help="Environment (never production).")] = "sandbox",
) -> None:
    """Create the published sandbox test logins (see the README) if they are missing."""
    from openpayer.members.sandbox import SANDBOX_MEMBERS, ensure_sandbox_members

    try:
        with command_services() as services:
            created = ensure_sandbox_members(services.auth.members, env)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    for username, _, patient in SANDBOX_MEMBERS:
        state = "created" if username in created else "exists"
        console.print(f"{username} -> Patient/{patient} ({state})")
