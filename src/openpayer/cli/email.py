"""`openpayer email`: send a test message through the configured backend; list recent messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from openpayer.cli.context import command_services
from openpayer.config import get_settings
from openpayer.db import write_transaction

# openpayer.email (its templates and delivery) is imported by the commands, not with the CLI: the other
# commands (`openpayer seed` is timed end to end) start without it.

app = typer.Typer(help="Outgoing email.", no_args_is_help=True)


def _when(seconds: int | None) -> str:
    return "-" if seconds is None else datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@app.command("send-test")
def send_test(address: Annotated[str, typer.Argument(help="Where to send the test message.")]) -> None:
    """Record a test message and deliver it now through the SMTP relay or the outbox."""
    from openpayer.email import InvalidRecipient
    from openpayer.email.tables import email_message

    console = Console()  # per command: the width follows COLUMNS at the time it runs
    settings = get_settings()
    with command_services(settings) as services:
        background, engine, clock = services.background, services.engine, services.clock
        deployment = settings.public_base_url or f"http://{settings.host}:{settings.port}"
        try:
            with write_transaction(engine) as conn:
                message_id = background.email.send(
                    conn,
                    to=address,
                    template="test_message",
                    context={"deployment": deployment, "sent_at": _when(clock.now()), "recipient": address},
                    cause="operator.send-test",
                )
                run_id = background.email.delivery_run(conn, message_id)
        except InvalidRecipient as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        background.runner.run_now(run_id)
        with engine.connect() as conn:
            row = conn.execute(select(email_message).where(email_message.c.id == message_id)).one()
    backend = background.email.backend
    where = f"the outbox {settings.home / 'outbox'}" if backend.name == "outbox" else "the SMTP relay"
    if row.status == "sent":
        console.print(f"Message {message_id} to {row.recipient} sent through {where}.", highlight=False)
        return
    console.print(
        f"[red]Message {message_id} was not delivered[/red]: {row.last_error}. It stays {row.status}"
        + ("; the job runner retries it with backoff." if row.status == "queued" else "."),
        highlight=False,
    )
    raise typer.Exit(1)


@app.command("list")
def list_messages(limit: Annotated[int, typer.Option(help="How many of the latest messages.")] = 20) -> None:
    """The latest messages: recipient, template, cause, status, attempts, last error, sent time."""
    from openpayer.email.tables import email_message

    console = Console()  # per command: the width follows COLUMNS at the time it runs
    with command_services() as services, services.engine.connect() as conn:
        rows = conn.execute(select(email_message).order_by(email_message.c.id.desc()).limit(limit)).all()
    table = Table(title="Email messages", title_justify="left")
    for column in (
        "id",
        "created",
        "recipient",
        "template",
        "cause",
        "status",
        "attempts",
        "sent",
        "last error",
    ):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row.id),
            _when(row.created_at),
            row.recipient,
            row.template,
            row.cause,
            row.status,
            str(row.attempts),
            _when(row.sent_at),
            row.last_error or "",
        )
    console.print(table)


@app.command("retry")
def retry_message(
    message_id: Annotated[int, typer.Argument(help="A failed message's id (see `email list`).")],
) -> None:
    """Queue a failed message again, e.g. after fixing OPENPAYER_SMTP_URL; the job runner delivers it."""
    console = Console()
    with command_services() as services, write_transaction(services.engine) as conn:
        run_id = services.background.email.retry(conn, message_id)
    if run_id is None:
        console.print(f"[red]Message {message_id} is not a failed message[/red]; nothing to retry.")
        raise typer.Exit(1)
    console.print(f"Message {message_id} queued again (run {run_id}).")
