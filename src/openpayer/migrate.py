"""Alembic, driven programmatically: one migration history for SQLite and PostgreSQL."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from openpayer.config import Settings
from openpayer.db import make_engine, prepare_sqlite_file


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("openpayer") / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head", engine: Engine | None = None) -> None:
    if settings.resolved_database_url.startswith("sqlite"):
        settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        prepare_sqlite_file(settings.resolved_database_url)
    config = alembic_config(settings.resolved_database_url)
    if engine is not None:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
        return
    command.upgrade(config, revision)


def current_revision(settings: Settings) -> str | None:
    engine = make_engine(settings.resolved_database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
