"""Alembic, driven programmatically: one migration history for SQLite and PostgreSQL.

An empty SQLite database is not taken through the history: its tables are created from the models at
once and stamped with the head revision (Alembic's cookbook, "Building an Up to Date Database from
Scratch"). On SQLite the history is DDL only (its data and storage statements are PostgreSQL's), and
`tests/test_migrations.py` checks that both ways give the same schema, row for row of `sqlite_master`'s
catalogue. On a fresh database an upgrade took 0.38 s, now 0.15 s, most of it importing every domain's
tables (docs/performance.md, Seeding, "Twenty-fifth session"). PostgreSQL always runs the history, from
the revision the database is at: a database already at the head revision is left as it is without
importing Alembic (`openpayer serve` and `make run` upgrade at every start).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from openpayer.config import Settings
from openpayer.db import make_engine, prepare_sqlite_file

if TYPE_CHECKING:  # Alembic is imported when a migration runs: not to create an empty SQLite database
    from alembic.config import Config


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("openpayer") / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision, from the migrations' file names (`NNNN_what_it_does.py`, revision "NNNN"),
    without loading the history (a test checks it against Alembic's own head)."""
    folder = Path(str(resources.files("openpayer") / "migrations" / "versions"))
    return max(path.name[:4] for path in folder.glob("[0-9][0-9][0-9][0-9]_*.py"))


def upgrade(
    settings: Settings, revision: str = "head", engine: Engine | None = None, *, whole_history: bool = False
) -> None:
    """Upgrade the database to `revision`; `whole_history`: run every migration even on an empty SQLite
    database (the tests that check the history itself)."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        prepare_sqlite_file(url)
        if revision == "head" and engine is None and not whole_history and _create_empty_sqlite(url):
            return
    if revision == "head" and engine is None and not whole_history and _at_head(url):
        return  # nothing to do, and Alembic (0.1 s to import, more to load the history) not needed to say so
    from alembic import command

    config = alembic_config(url)
    if engine is not None:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
        return
    command.upgrade(config, revision)


# What Alembic creates to hold the revision (`alembic.runtime.migration`), as SQLite gets it.
_VERSION_TABLE = (
    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
)


def _create_empty_sqlite(url: str) -> bool:
    """If the SQLite database has nothing in it, create the head's tables and stamp it, in one write
    transaction (another process upgrading the same file at once waits, then finds it done); else False."""
    import openpayer.models  # noqa: F401  - registers every domain's tables on the metadata
    from openpayer.db import metadata

    engine = make_engine(url)
    try:
        with engine.connect().execution_options(write=True) as conn, conn.begin():
            if conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar_one():
                return False
            metadata.create_all(conn)
            conn.exec_driver_sql(_VERSION_TABLE)
            conn.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES (?)", (head_revision(),))
        return True
    finally:
        engine.dispose()


def _at_head(url: str) -> bool:
    return _stamped(url) == [head_revision()]


def _stamped(url: str) -> list[str] | None:
    """The revisions the database is stamped with, read as Alembic keeps them (one row, linear history);
    None when it has no version table (never migrated, or not ours: Alembic says which)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.exec_driver_sql("SELECT version_num FROM alembic_version")]
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()


def current_revision(settings: Settings) -> str | None:
    """The revision `openpayer db current` prints (None: nothing migrated yet)."""
    stamped = _stamped(settings.resolved_database_url)
    return stamped[0] if stamped else None
