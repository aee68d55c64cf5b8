"""The CLI tests run the commands in process against the per-test database."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from openpayer.config import Settings


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner whose OPENPAYER_* environment points the commands at this test's database."""
    monkeypatch.setenv("OPENPAYER_HOME", str(settings.home))
    monkeypatch.setenv("OPENPAYER_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("OPENPAYER_SECRET_KEY", "test-secret")
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()
