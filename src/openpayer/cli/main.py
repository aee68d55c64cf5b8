"""`openpayer`: serve the platform, manage its database, load and seed data.

Each command's module is imported only when that command runs (or when help lists it): `openpayer seed` should
not pay for the web server, the JOSE stack and the HTTP client it never uses before its first resource.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Iterator, MutableMapping
from importlib import import_module
from typing import TYPE_CHECKING, Any

import typer
import typer.main
from pydantic import ValidationError
from rich.console import Console
from typer.core import TyperGroup

from openpayer.config import get_settings

if TYPE_CHECKING:  # Typer vendors its own Click (typer._click): its groups hold that Click's commands
    from typer._click import Command

# name -> "module:attribute", in the order help lists them: a Typer is a command group, a function one command
COMMANDS = {
    "healthcheck": "openpayer.cli.healthcheck:healthcheck",
    "serve": "openpayer.cli.serve:serve",
    "worker": "openpayer.cli.worker:worker",
    "load": "openpayer.cli.load:load",
    "seed": "openpayer.cli.seed:seed",
    "db": "openpayer.cli.db:app",
    "clients": "openpayer.cli.clients:app",
    "members": "openpayer.cli.members:app",
    "keys": "openpayer.cli.keys:app",
    "staff": "openpayer.cli.staff:app",
    "jobs": "openpayer.cli.jobs:app",
    "email": "openpayer.cli.email:app",
    "policy": "openpayer.cli.policy:app",
    "report": "openpayer.cli.report:app",
    "security": "openpayer.cli.security:app",
}


def load_command(name: str, target: str) -> Command:
    """The command for one entry of COMMANDS, built as `add_typer` or `command` would have built it."""
    module, attribute = target.split(":")
    found = getattr(import_module(module), attribute)
    if isinstance(found, typer.Typer):
        group = typer.main.get_group(found)
        group.name = name
        return group
    single = typer.Typer(add_completion=False)
    single.command(name)(found)
    return typer.main.get_command(single)


class LazyCommands(MutableMapping[str, "Command"]):
    """The group's commands by name, each module imported on first look-up; the names need no import."""

    def __init__(self, targets: dict[str, str], loaded: MutableMapping[str, Command]) -> None:
        self._targets = dict(targets)
        self._loaded = dict(loaded)

    def __getitem__(self, name: str) -> Command:
        if name not in self._loaded:
            if name not in self._targets:
                raise KeyError(name)
            self._loaded[name] = load_command(name, self._targets[name])
        return self._loaded[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        known = self._targets.pop(name, None) is not None
        if self._loaded.pop(name, None) is None and not known:
            raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        yield from self._targets
        yield from (name for name in self._loaded if name not in self._targets)

    def __len__(self) -> int:
        return len(self._targets.keys() | self._loaded.keys())


class LazyGroup(TyperGroup):
    """Typer's group with COMMANDS looked up lazily (listing, help, typo suggestions work as before)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands(COMMANDS, self.commands)


app = typer.Typer(
    name="openpayer",
    help="OpenPayer: FHIR R4 Patient Access, Provider Directory and Formulary APIs for a US health plan.",
    no_args_is_help=True,
    add_completion=False,
    cls=LazyGroup,
)


@app.callback()
def check_configuration() -> None:
    """Refuse to start on bad OPENPAYER_* settings, saying which and why, instead of a traceback."""
    try:
        get_settings()
    except ValidationError as exc:
        console = Console(stderr=True)
        console.print("[red]Invalid configuration:[/red]")
        for error in exc.errors():
            name = "OPENPAYER_" + "_".join(str(part) for part in error["loc"][:1]).upper()
            console.print(f"  {name}: {error['msg']}", markup=False)
        raise typer.Exit(2) from None


def main() -> None:
    """The `openpayer` command: the app, then an exit that skips the interpreter's teardown.

    A seed or a load ends with a heap of hundreds of thousands of objects (the FHIR definitions, the
    validator's and the indexer's tables), which the interpreter's finalisation freed one by one: 0.3 s of
    the 4.4 s `openpayer seed --members 200` took (docs/performance.md, Seeding). Once the command has
    returned, the exit handlers run and the output is flushed as a normal exit would, and the process ends
    there. With a thread still running (the normal exit would wait for it) the exit is the normal one.
    """
    try:
        app()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if threading.active_count() > 1:
        sys.exit(code)  # type: ignore[arg-type]
    status = _status(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away, a closed stream: nothing more to say
            status = status or 1
    os._exit(status)


def _status(code: object) -> int:
    """The exit status `sys.exit(code)` gives: None 0, an int itself, anything else printed and 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    main()
