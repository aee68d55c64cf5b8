"""`openpayer clients`: register SMART apps and backend services (until the developer portal exists)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import Engine

from openpayer.config import Settings, get_settings
from openpayer.db import make_engine
from openpayer.oauth.clients import ClientStore
from openpayer.oauth.clock import Clock

app = typer.Typer(
    help="Register and manage OAuth clients (SMART apps, backend services).", no_args_is_help=True
)
console = Console()


def _store(settings: Settings) -> tuple[ClientStore, Engine]:
    engine = make_engine(settings.resolved_database_url)
    return ClientStore(engine, Clock()), engine


def _check_env(settings: Settings, env: str) -> None:
    if env not in settings.environments:
        raise typer.BadParameter(
            f"unknown environment {env!r}; configured: {', '.join(settings.environments)}"
        )


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
    _check_env(settings, env)
    keys = json.loads(jwks.read_text()) if jwks else None
    if not redirect_uri and not (keys or jwks_url):
        raise typer.BadParameter("--redirect-uri is required for apps that members sign in to")
    store, engine = _store(settings)
    try:
        client_id, secret = store.register(
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
    finally:
        engine.dispose()
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
    _check_env(settings, env)
    store, engine = _store(settings)
    try:
        for client in store.list(env):
            console.print(f"{client.client_id}  {client.status:9}  {client.auth_method:15}  {client.name}")
    finally:
        engine.dispose()


@app.command("suspend")
def suspend(env: Annotated[str, typer.Argument()], client_id: Annotated[str, typer.Argument()]) -> None:
    """Suspend a client: its tokens and refresh tokens stop working."""
    settings = get_settings()
    _check_env(settings, env)
    store, engine = _store(settings)
    try:
        if not store.set_status(env, client_id, "suspended"):
            raise typer.BadParameter(f"no client {client_id} in {env}")
    finally:
        engine.dispose()
    console.print(f"suspended {client_id}")
