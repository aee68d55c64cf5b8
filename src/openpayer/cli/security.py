"""`openpayer security`: the security event stream and what the detectors found (docs/security.md)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from openpayer.cli.context import command_services

app = typer.Typer(help="Security events and detections.", no_args_is_help=True)
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str | None, now_micros: int) -> int | None:
    """`15m`, `2h`, `1d` (that long ago) or an ISO date-time (UTC when no zone is given), as microseconds."""
    if not value:
        return None
    match = _DURATION.match(value.strip())
    if match:
        return now_micros - int(match.group(1)) * _UNITS[match.group(2)] * 1_000_000
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise typer.BadParameter(
            f"{value!r} is neither a duration (15m, 2h, 1d) nor an ISO date-time"
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1_000_000)


def _when(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%fZ")[:-4] + "Z"


SinceOption = Annotated[str | None, typer.Option("--since", help="15m, 2h, 1d or an ISO date-time.")]
LimitOption = Annotated[int, typer.Option("--limit", min=1, help="At most this many rows, newest first.")]


@app.command("events")
def events(
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="signin:member, token:client-auth, ...")
    ] = None,
    env: Annotated[str | None, typer.Option("--env")] = None,
    client: Annotated[str | None, typer.Option("--client", help="A client id.")] = None,
    address: Annotated[str | None, typer.Option("--address", help="A source address.")] = None,
    outcome: Annotated[
        str | None, typer.Option("--outcome", help="success, failure, refused, throttled")
    ] = None,
    since: SinceOption = None,
    limit: LimitOption = 100,
) -> None:
    """Security events, newest first (accounts are keyed hashes, never usernames)."""
    console = Console()
    with command_services() as services:
        found = services.security.events.query(
            kinds=kind or (),
            env=env,
            client_id=client,
            address=address,
            outcome=outcome,
            since=parse_since(since, services.clock.now_micros()),
            limit=limit,
        )
    table = Table(title="Security events", title_justify="left")
    for column in (
        "id",
        "time",
        "env",
        "kind",
        "outcome",
        "address",
        "client",
        "account",
        "status",
        "detail",
    ):
        table.add_column(column)
    for e in found:
        table.add_row(
            str(e.id),
            _when(e.at),
            e.env or "-",
            e.kind,
            e.outcome,
            e.address or "-",
            e.client_id or "-",
            (e.account or "-")[:12],
            str(e.status) if e.status is not None else "-",
            e.detail or "",
        )
    console.print(table)
    console.print(f"{len(found)} events.")


@app.command("detections")
def detections(
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="brute_force, password_spraying, ...")
    ] = None,
    env: Annotated[str | None, typer.Option("--env")] = None,
    client: Annotated[str | None, typer.Option("--client", help="The app the traffic came through.")] = None,
    since: SinceOption = None,
    limit: LimitOption = 100,
) -> None:
    """What the detectors found (and apps flagged by the default risk sink), newest first."""
    console = Console()
    with command_services() as services:
        found = services.security.detections(
            kinds=kind or (),
            env=env,
            client_id=client,
            since=parse_since(since, services.clock.now_micros()),
            limit=limit,
        )
    table = Table(title="Detections", title_justify="left")
    for column in ("id", "time", "env", "kind", "subject", "app", "count", "window"):
        table.add_column(column)
    for d in found:
        seconds = (d.window_end - d.window_start) // 1_000_000
        table.add_row(
            str(d.id),
            _when(d.at),
            d.env or "-",
            d.kind,
            d.subject,
            d.client_id or "-",
            str(d.count),
            f"{_when(d.window_start)} +{seconds}s",
        )
    console.print(table)
    console.print(f"{len(found)} detections.")
