"""`openpayer members`: link member logins to Patients (operators' path until identity federation)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.exc import IntegrityError

from openpayer.config import get_settings
from openpayer.db import make_engine, read_connection
from openpayer.fhir.storage.repository import ResourceRepository
from openpayer.members.accounts import MemberStore
from openpayer.oauth.clock import Clock
from openpayer.oauth.keys import Sealer

app = typer.Typer(help="Manage member logins.", no_args_is_help=True)
console = Console()


def _store() -> tuple[MemberStore, object]:
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    sealer = Sealer(settings.auth_key_encryption_key or settings.resolved_secret_key)
    return MemberStore(engine, Clock(), sealer), engine


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
    if env not in get_settings().environments:
        raise typer.BadParameter(f"unknown environment {env!r}")
    store, engine = _store()
    try:
        # A login whose Patient is missing could sign in and then find every read a 404.
        with read_connection(engine) as conn:  # type: ignore[arg-type]
            if not ResourceRepository().exists(conn, env, "Patient", patient):
                raise typer.BadParameter(
                    f"there is no Patient/{patient} in {env}: load the member's records first"
                )
        member = store.create(env, username, password, patient)
        secret = store.enroll_totp(env, username) if totp else None
    except ValueError as exc:  # the password rule it broke, with the minimum (never the password)
        raise typer.BadParameter(str(exc)) from exc
    except IntegrityError as exc:
        raise typer.BadParameter(f"the username {username!r} is taken in {env}") from exc
    finally:
        engine.dispose()  # type: ignore[attr-defined]
    console.print(f"member {member.username} (id {member.id}) -> Patient/{patient} in {env}")
    if secret:
        console.print(f"TOTP secret (shown once): {secret}")


@app.command("enroll-totp")
def enroll_totp(
    env: Annotated[str, typer.Argument()], username: Annotated[str, typer.Option("--username")]
) -> None:
    """Enrol (or replace) a member's TOTP second factor; prints the secret once."""
    store, engine = _store()
    try:
        secret = store.enroll_totp(env, username)
    except LookupError as exc:
        raise typer.BadParameter(str(exc)) from exc
    finally:
        engine.dispose()  # type: ignore[attr-defined]
    console.print(f"TOTP secret (shown once): {secret}")


@app.command("seed-sandbox")
def seed_sandbox(
    env: Annotated[str, typer.Argument(help="Environment (never production).")] = "sandbox",
) -> None:
    """Create the published sandbox test logins (see the README) if they are missing."""
    from openpayer.members.sandbox import SANDBOX_MEMBERS, ensure_sandbox_members

    store, engine = _store()
    try:
        created = ensure_sandbox_members(store, env)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    finally:
        engine.dispose()  # type: ignore[attr-defined]
    for username, _, patient in SANDBOX_MEMBERS:
        state = "created" if username in created else "exists"
        console.print(f"{username} -> Patient/{patient} ({state})")
