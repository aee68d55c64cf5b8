"""Shared fixtures: a fresh database per test on SQLite, or on PostgreSQL when OPENPAYER_TEST_BACKEND says so.

`make test` runs the suite twice: on SQLite, then with OPENPAYER_TEST_BACKEND=postgresql against
OPENPAYER_TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/openpayer_test), each xdist worker
in its own database. On PostgreSQL the schema is migrated once per worker and tables are emptied per test.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from openpayer.app import create_app
from openpayer.bootstrap import Services, build_services
from openpayer.config import Settings, normalise_database_url
from openpayer.db import make_engine, metadata
from openpayer.migrate import upgrade

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()
BACKEND = os.environ.get("OPENPAYER_TEST_BACKEND", "sqlite")
PG_URL = os.environ.get("OPENPAYER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/openpayer_test")


def shared_path(*parts: str) -> Path:
    """A path under ../shared; the test is skipped when the reference data is not beside the repo."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data {path} is not available")
    return path


def _worker_database_url(worker: str) -> str:
    base = normalise_database_url(PG_URL)
    head, _, name = base.rpartition("/")
    return f"{head}/{name}_{worker}"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Commands run in process (`openpayer serve`, `openpayer worker`) configure logging for the whole
    process (openpayer.observability.logs); each test starts from the logging pytest set up."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def postgres_url(worker_id: str) -> Iterator[str]:
    url = _worker_database_url(worker_id)
    head, _, name = url.rpartition("/")
    admin = create_engine(f"{head}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    upgrade(Settings(database_url=url, secret_key="test"))
    yield url
    admin = create_engine(f"{head}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if BACKEND == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        engine = make_engine(url)
        with engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        engine.dispose()
        yield url
    else:
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, tmp_path / "openpayer.db")
        yield f"sqlite:///{tmp_path / 'openpayer.db'}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, copied for each test (migrating per test costs a second). It goes
    through the whole history, which `test_migrations` checks against the models; an empty database's
    shortcut (`openpayer.migrate`) is checked against it there too."""
    folder = tmp_path_factory.mktemp("template")
    url = f"sqlite:///{folder / 'openpayer.db'}"
    upgrade(Settings(database_url=url, home=folder, secret_key="test"), whole_history=True)
    engine = make_engine(url)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return folder / "openpayer.db"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # The engine tests reach /{env}/fhir without tokens; the SMART tests switch the guard back on.
    return Settings(home=tmp_path, database_url=database_url, secret_key="test-secret", auth_enforce=False)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    yield built
    built.engine.dispose()


@pytest.fixture
def engine(services: Services) -> Engine:
    return services.engine


@pytest.fixture
def client(settings: Settings, services: Services) -> Iterator[TestClient]:
    app = create_app(settings, services=services)
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as test_client:
        yield test_client
