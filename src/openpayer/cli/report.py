"""`openpayer report`: reports the plan files with regulators, computed from the platform's own records.

`cms-usage` is the CMS-0057-F Patient Access API usage report for one calendar year and environment (the
method: docs/reports.md). It runs as an operator (no staff permission: the shell is trusted, as for
`openpayer staff create`).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from openpayer.cli.context import check_env, command_services
from openpayer.config import get_settings
from openpayer.portal.errors import PortalError

app = typer.Typer(help="Reports computed from the platform's records.", no_args_is_help=True)
console = Console()


@app.command("cms-usage")
def cms_usage(
    year: Annotated[int, typer.Option("--year", help="The calendar year, e.g. 2026.")],
    env: Annotated[str, typer.Option("--env", help="The environment, e.g. production.")],
    fmt: Annotated[str, typer.Option("--format", help="text, csv or json.")] = "text",
) -> None:
    """Unique patients whose data went to an app they chose, and those whose data went more than once."""
    settings = get_settings()
    check_env(settings, env)
    if fmt not in ("text", "csv", "json"):
        raise typer.BadParameter("the format is text, csv or json")
    try:
        with command_services(settings) as services:
            report = services.portal.reports.cms_usage(None, year, env)
    except PortalError as exc:
        raise typer.BadParameter(exc.message) from exc
    if fmt == "json":
        typer.echo(report.as_json(), nl=False)
    elif fmt == "csv":
        typer.echo(report.as_csv(), nl=False)
    else:
        console.print(f"CMS Patient Access API usage, {report.year}, {report.env}")
        console.print(f"  unique patients whose data was transferred: {report.unique_patients}")
        console.print(f"  of whom more than once:                     {report.more_than_once}")
        console.print(f"  apps: {report.apps}; successful requests counted: {report.requests}")
        console.print(f"  period: {report.period_start} to {report.period_end} (end excluded)")
