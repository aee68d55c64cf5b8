"""The `openpayer` command line: help, migrations."""

from __future__ import annotations

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


def test_db_upgrade_creates_the_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENPAYER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OPENPAYER_DATABASE_URL", raising=False)
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "home" / "openpayer.db").exists()
    current = runner.invoke(app, ["db", "current"])
    assert current.exit_code == 0
    assert "(empty database)" not in current.output
