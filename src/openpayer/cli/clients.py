"""`openpayer clients`: register SMART apps and backend services (until the developer portal exists)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from openpayer.cli.context import check_env, command_services
from openpayer.config import get_settings

app = typer.Typer(
    help="Register and manage OAuth clients (SMART apps, backend services).", no_args_is_help=True
)
console = Console()


@app.command("register")
def register(
    env: Annotated[str, typer.Argument(help="Environment, e.g. sandbox or production.")],
    name: Annotated[str, typer.Option("--name", help="The app's name, shown to members.")],
    redirect_uri: Annotated[
        list[str], typer.Option("--redirect-uri", help="Exact redirect URI (repeatable).")
    ] = [],  # noqa: B006
    public: Annotated[bool, typer.Option("--public/--confidential", help="Public app (PKCE only).")] = False,
    jwks_url: Annotated[str | None, typer.Option("--jwks-url", help="JWKS URL (private_key_jwt).")] = None,
    jwks: Annotated[Path | None, typer.Option("--jwks", help="JWKS file (private_key_jwt).")] = None,
    scope: Annotated[list[str], typer.Option("--scope", help="Registered scope, e.g. system/*.rs.")] = [],  # noqa: B006
    developer: Annotated[str, typer.Option("--developer", help="Developer name, shown to members.")] = "",
    privacy_policy: Annotated[
        str | None, typer.Option("--privacy-policy", help="Privacy policy URL.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Register a client; prints its client_id and, for confidential symmetric clients, its secret (once)."""
    settings = get_settings()
    check_env(settings, env)
    keys = json.loads(jwks.read_text()) if jwks else None
    if not redirect_uri and not (keys or jwks_url):
        raise typer.BadParameter("--redirect-uri is required for apps that members sign in to")
    try:
        with command_services(settings) as services:
            client_id, secret = services.auth.clients.register(
                env,
                name=name,
                redirect_uris=redirect_uri,
                public=public,
                jwks=keys,
                jwks_url=jwks_url,
                scopes=scope,
                developer=developer,
                privacy_policy_url=privacy_policy,
            )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    out = {"env": env, "client_id": client_id}
    if secret:
        out["client_secret"] = secret
    if as_json:
        typer.echo(json.dumps(out))
        return
    console.print(f"client_id: {client_id}")
    if secret:
        console.print(f"client_secret: {secret}")
        console.print("[yellow]The secret is shown only now; only its digest is stored.[/yellow]")


@app.command("list")
def list_clients(env: Annotated[str, typer.Argument(help="Environment.")]) -> None:
    """List the environment's clients (never their secrets)."""
    settings = get_settings()
    check_env(settings, env)
    with command_services(settings) as services:
        for client in services.auth.clients.list(env):
            console.print(f"{client.client_id}  {client.status:9}  {client.auth_method:15}  {client.name}")


@app.command("suspend")
def suspend(env: Annotated[str, typer.Argument()], client_id: Annotated[str, typer.Argument()]) -> None:
    """Suspend a client: its tokens and refresh tokens stop working."""
    settings = get_settings()
    check_env(settings, env)
    with command_services(settings) as services:
        if not services.auth.clients.set_status(env, client_id, "suspended"):
            raise typer.BadParameter(f"no client {client_id} in {env}")
    console.print(f"suspended {client_id}")
