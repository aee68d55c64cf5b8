"""The `openpayer` command line: help, migrations."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openpayer.cli.main import app

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "db", "load"):
        assert command in result.output


def test_help_lists_every_command_in_order() -> None:
    result = runner.invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    names = re.findall(r"^│ ([a-z]+) ", result.output, flags=re.MULTILINE)  # a row's first word, not a wrap
    assert names == ["healthcheck", "serve", "worker", "load", "seed", "db", "clients", "members", "keys",
                     "staff", "jobs", "email", "policy", "report", "security"]  # fmt: skip


def imported_after(home: Path, code: str, names: tuple[str, ...]) -> list[str]:
    """Which of `names` a fresh interpreter has imported once it has run `code`."""
    script = f"import sys\n{code}\nprint([name for name in {names!r} if name in sys.modules])\n"
    env = {"OPENPAYER_HOME": str(home), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    imported: list[str] = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    return imported


def test_a_command_imports_only_its_own_module(tmp_path: Path) -> None:
    """`openpayer db current` must not pay for the web server, the seed generators or the HTTP client."""
    code = (
        "from openpayer.cli.main import app\n"
        "try:\n"
        "    app(['db', 'current'])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code in (0, None), exit.code"
    )
    heavy = ("uvicorn", "httpx", "openpayer.cli.seed", "openpayer.cli.serve", "openpayer.fhir.loading")
    assert imported_after(tmp_path, code, heavy) == []


def test_the_seed_forks_its_generator_before_the_database_and_the_loader_are_imported(tmp_path: Path) -> None:
    """`openpayer seed` writes the plan in a child while it imports the rest: the fork must come first."""
    heavy = (
        "sqlalchemy",
        "alembic",
        "openpayer.bootstrap",
        "openpayer.fhir.loading",
        "openpayer.cli.seeding",
    )
    assert imported_after(tmp_path, "import openpayer.cli.seed", heavy) == []


def test_a_mistyped_command_is_answered_with_the_closest_name() -> None:
    result = runner.invoke(app, ["sed"])
    assert result.exit_code == 2
    assert "seed" in result.output
    assert "Traceback" not in result.output


def test_db_upgrade_creates_the_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENPAYER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OPENPAYER_DATABASE_URL", raising=False)
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "home" / "openpayer.db").exists()
    current = runner.invoke(app, ["db", "current"])
    assert current.exit_code == 0
    assert "(empty database)" not in current.output


@pytest.mark.parametrize(
    ("variable", "value"),
    [("OPENPAYER_ENVIRONMENTS", "[not json"), ("OPENPAYER_PORT", "eighty"), ("OPENPAYER_MAX_PAGE_SIZE", "-")],
)
def test_bad_settings_are_named_without_a_traceback(
    variable: str, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENPAYER_HOME", str(tmp_path))
    monkeypatch.setenv(variable, value)
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 2
    assert variable in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "openpayer.db").exists()


@pytest.mark.parametrize("value", ["dev, production", '["dev", "production"]'])
def test_environments_take_a_comma_list_or_json(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from openpayer.config import Settings

    monkeypatch.setenv("OPENPAYER_ENVIRONMENTS", value)
    assert Settings().environments == ["dev", "production"]


def run_main(home: Path, *args: str, before: str = "") -> subprocess.CompletedProcess[str]:
    """`openpayer ARGS` through `openpayer.cli.main.main` (the console script's entry) in a fresh
    interpreter, its output read through pipes; `before`: code run first in that interpreter."""
    script = (
        f"import sys\n{before}\nsys.argv = ['openpayer', *{list(args)!r}]\n"
        "from openpayer.cli.main import main\nmain()\n"
    )
    env = {"OPENPAYER_HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )


def test_the_quick_exit_keeps_the_status_the_output_and_the_exit_handlers(tmp_path: Path) -> None:
    """`main` ends the process without the interpreter's teardown: what a normal exit does still happens."""
    folder = tmp_path / "plan"
    handler = "import atexit\natexit.register(lambda: print('exit handler ran', file=sys.stderr))"
    done = run_main(
        tmp_path, "seed", "sandbox", "--members", "3", "--ndjson", str(folder), "--json", before=handler
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)  # the whole JSON, flushed before the process ended
    assert summary["resources"] == sum(1 for path in folder.iterdir() for _ in path.open())
    assert "exit handler ran" in done.stderr

    refused = run_main(tmp_path, "seed", "nowhere", before=handler)
    assert refused.returncode == 2
    assert "Unknown environment 'nowhere'" in refused.stderr
    assert "exit handler ran" in refused.stderr

    unknown = run_main(tmp_path, "sed")
    assert unknown.returncode == 2
    assert "seed" in unknown.stderr


def test_with_a_thread_still_running_main_exits_as_python_does(tmp_path: Path) -> None:
    """A thread the command left running is waited for, as a normal exit waits for it."""
    thread = (
        "import threading, time\n"
        "import openpayer.cli.main as cli\n"
        "returned, command = threading.Event(), cli.app\n"
        "def app():\n"
        "    try:\n"
        "        command()\n"
        "    finally:\n"
        "        returned.set()\n"
        "cli.app = app\n"
        "def later():\n"
        "    returned.wait()\n"
        "    time.sleep(0.2)\n"
        "    print('thread finished', flush=True)\n"
        "threading.Thread(target=later).start()"
    )
    done = run_main(tmp_path, "--help", before=thread)
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout
    assert done.stdout.rstrip().endswith("thread finished")


@pytest.mark.parametrize(
    ("code", "status", "printed"), [(None, 0, ""), (3, 3, ""), ("bad news", 1, "bad news\n")]
)
def test_an_exit_code_becomes_the_status_python_would_give(
    code: object, status: int, printed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from openpayer.cli.main import _status

    assert _status(code) == status
    assert capsys.readouterr().err == printed
