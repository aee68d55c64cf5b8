"""`openpayer keys`: the authorization server's signing keys per environment."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from openpayer.cli.context import check_env, command_services
from openpayer.config import get_settings

app = typer.Typer(help="Manage ID-token signing keys.", no_args_is_help=True)
console = Console()


@app.command("rotate")
def rotate(env: Annotated[str, typer.Argument(help="Environment.")]) -> None:
    """Add a new signing key: it signs from now on; older keys stay published in the JWKS."""
    settings = get_settings()
    check_env(settings, env)
    with command_services(settings) as services:
        kid = services.auth.keys.rotate(env)
        published = [k["kid"] for k in services.auth.keys.jwks(env)["keys"]]
    console.print(f"new signing key {kid}; published: {', '.join(published)}")
    console.print("Running servers pick it up within a minute.")
