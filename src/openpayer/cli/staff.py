"""`openpayer staff`: create the plan's staff accounts (the first admin, or anyone, from an operator's shell).

`create` makes the account if the address has none (with a random temporary password, printed once, and the
address taken as verified: the operator vouches for it) and gives it the role. The person signs in at
`/admin/signin` and must set up TOTP before anything else. The action is audited with no actor (the shell).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from openpayer.cli.context import command_services
from openpayer.portal.errors import PortalError
from openpayer.portal.staff import ROLE_DESCRIPTIONS, Role

app = typer.Typer(help="Staff accounts of the console (/admin/).", no_args_is_help=True)
console = Console()


@app.command("create")
def create(
    email: Annotated[str, typer.Option("--email", help="The person's e-mail address (their sign-in).")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(r.value for r in Role)}.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Give an account a staff role, creating the account (temporary password shown once) if needed."""
    try:
        with command_services() as services:
            member, password = services.portal.actions.create_staff(None, email=email, role=role)
    except PortalError as exc:
        raise typer.BadParameter(exc.message) from exc
    out: dict[str, str] = {"email": member.email, "role": member.role.value}
    if password:
        out["temporary_password"] = password
    if as_json:
        typer.echo(json.dumps(out))
        return
    console.print(f"{member.email} is now {member.role.value}: {ROLE_DESCRIPTIONS[member.role]}")
    if password:
        console.print(f"temporary password: {password}", markup=False)
        console.print("[yellow]Shown only now. Sign in at /admin/signin; set up two-step sign-in.[/yellow]")
