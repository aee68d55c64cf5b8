"""`openpayer keys`: the authorization server's signing keys per environment."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from openpayer.config import get_settings
from openpayer.db import make_engine
from openpayer.oauth.keys import KeyStore, Sealer

app = typer.Typer(help="Manage ID-token signing keys.", no_args_is_help=True)
console = Console()


@app.command("rotate")
def rotate(env: Annotated[str, typer.Argument(help="Environment.")]) -> None:
    """Add a new signing key: it signs from now on; older keys stay published in the JWKS."""
    settings = get_settings()
    if env not in settings.environments:
        raise typer.BadParameter(f"unknown environment {env!r}")
    engine = make_engine(settings.resolved_database_url)
    try:
        store = KeyStore(engine, Sealer(settings.auth_key_encryption_key or settings.resolved_secret_key))
        kid = store.rotate(env)
        published = [k["kid"] for k in store.jwks(env)["keys"]]
    finally:
        engine.dispose()
    console.print(f"new signing key {kid}; published: {', '.join(published)}")
    console.print("Running servers pick it up within a minute.")
