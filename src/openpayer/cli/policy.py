"""`openpayer policy`: the inactivity policy's sweep by hand, every subscription's status, staff pauses."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from openpayer.cli.context import command_services

if TYPE_CHECKING:
    from openpayer.policy.engine import InactivityPolicy

# openpayer.policy.engine is imported by the commands that use it, not with the CLI: `openpayer seed` and
# the other commands start without it (docs/performance.md, Seeding).

app = typer.Typer(help="The inactivity policy (docs/policy.md).", no_args_is_help=True)


def _day(value: str | None) -> date | None:
    from openpayer.policy.engine import PolicyError, parse_day

    if value is None:
        return None
    try:
        return parse_day(value)
    except PolicyError as error:
        raise typer.BadParameter(str(error)) from error


@app.command()
def sweep(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Sweep as on this local date (YYYY-MM-DD), e.g. to preview.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would happen; change nothing.")
    ] = False,
) -> None:
    """Advance every subscription by at most one step (notice, escalation, removal, return to active)."""
    day = _day(as_of)
    console = Console()
    with command_services() as services:
        steps = services.policy.sweep(day, dry_run=dry_run)
    verb = "would move" if dry_run else "moved"
    for step in steps:
        console.print(
            f"subscription {step.subscription_id} {verb} {step.from_state} → {step.to_state}: {step.reason}",
            highlight=False,
        )
    console.print(f"{len(steps)} step(s){' (dry run)' if dry_run else ''}", highlight=False)


@app.command()
def status() -> None:
    """Every subscription's state, last authorization and API call, and its next step and date."""
    console = Console()
    with command_services() as services:
        policy = services.policy
        statuses = policy.status()
        table = Table(
            "Subscription", "Application", "Env", "State", "Last authorization", "Last call", "Next"
        )
        for item in statuses:
            row = item.row
            seen = row.seen
            table.add_row(
                str(row.subscription_id),
                row.application,
                row.env,
                row.state if row.status == "active" else f"{row.state} ({row.status})",
                _when(policy, seen.last_authorized_at),
                _when(policy, seen.last_call_at),
                f"{item.next_step} on {item.next_on}" if item.next_on else item.next_step,
            )
    console.print(table)


def _when(policy: InactivityPolicy, seconds: int | None) -> str:
    return "never" if seconds is None else policy.local_date(seconds).isoformat()


@app.command()
def pause(
    subscription_id: Annotated[int, typer.Argument(help="The subscription (see `policy status`).")],
    until: Annotated[str, typer.Option("--until", help="The local date the pause ends (YYYY-MM-DD).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (e.g. an agreed seasonal app).")],
    staff: Annotated[
        str, typer.Option("--staff", help="Who decided (recorded with the pause).")
    ] = "operator",
) -> None:
    """Leave a subscription alone until a date; then its window restarts from that date."""
    from openpayer.policy.engine import PolicyError

    day = _day(until)
    assert day is not None
    with command_services() as services:
        try:
            services.policy.pause(subscription_id, until=day, reason=reason, actor=f"staff:{staff}")
        except PolicyError as error:
            raise typer.BadParameter(str(error)) from error
    Console().print(f"subscription {subscription_id} paused until {day}", highlight=False)


@app.command()
def respond(
    subscription_id: Annotated[int, typer.Argument(help="The subscription (see `policy status`).")],
    staff: Annotated[str, typer.Option("--staff", help="Who recorded the response.")] = "operator",
) -> None:
    """Record the developer's response (e.g. by phone): the outreach ends and the window restarts today."""
    from openpayer.policy.engine import PolicyError

    with command_services() as services:
        try:
            done = services.policy.respond(subscription_id, actor=f"staff:{staff}")
        except PolicyError as error:
            raise typer.BadParameter(str(error)) from error
    if not done:
        Console(stderr=True).print("nothing recorded: the subscription is removed or paused")
        raise typer.Exit(1)
    Console().print(f"response recorded for subscription {subscription_id}", highlight=False)
