"""Fixtures of the guide conformance tests: a store loaded with a guide's examples, searched over HTTP.

Each test module names its guide (`GUIDE`), the API serving it (`API`: `fhir` or `directory`) and the files
to load (`SOURCES`, paths under ../shared); it may add `supplement(stored) -> resources`, resources derived
from the loaded examples that supply links the examples lack. `dataset` is parametrized:

- `examples`: a fresh store (one per module) loaded with the files through the engine's write path (the
  validator included; a rejected file or entry is recorded in `dataset.rejected`);
- `generated`: a store (one per session and worker, shared by the modules) loaded with a small plan from the
  data generator (`openpayer.seed`, GENERATED_MEMBERS members, seed 1) through the same validation;
- `seeded`: an existing seeded sandbox, when OPENPAYER_CONFORMANCE_DATABASE_URL names its database (the
  data generator's output); skipped otherwise. The expected results are computed from whatever the store
  holds, read back from the database, so the same cases run unchanged on either.

Requests to `/{env}/fhir` carry a `system/*.rs` bearer token of a registered backend client (the auth
layer's own client and token stores); `Prefer: handling=strict` makes an unknown parameter an error.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from openpayer.app import create_app
from openpayer.bootstrap import build_services
from openpayer.config import Settings
from openpayer.conformance.metadata import load_index
from openpayer.db import make_engine, metadata, write_transaction
from openpayer.fhir.errors import FHIRError
from openpayer.migrate import upgrade

SHARED = (Path(__file__).resolve().parents[2] / ".." / "shared").resolve()
ENV = "sandbox"
SEEDED_URL = os.environ.get("OPENPAYER_CONFORMANCE_DATABASE_URL")
GENERATED_MEMBERS = 10


def _support() -> ModuleType:
    name = "openpayer_conformance_support"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("support.py"))
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


support = _support()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        module = metafunc.module
        served = None
        if getattr(module, "API", "fhir") == "directory":
            from openpayer.api.context import DIRECTORY_TYPES

            served = DIRECTORY_TYPES
        guides = getattr(module, "GUIDES", [module.GUIDE])
        found = {c.id: c for g in guides for c in support.cases_for(load_index(), g, served)}
        cases = list(found.values()) + list(getattr(module, "EXTRA_CASES", []))
        metafunc.parametrize("case", cases, ids=[c.id for c in cases])


# ---- fixtures ----------------------------------------------------------------------------------------------


def _fresh_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty migrated database: a copy of the session's SQLite template, or the worker's PostgreSQL
    database emptied."""
    if os.environ.get("OPENPAYER_TEST_BACKEND", "sqlite") == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        engine = make_engine(url)
        with engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return url
    template: Path = request.getfixturevalue("sqlite_template")
    folder = tmp_path_factory.mktemp("conformance")
    shutil.copyfile(template, folder / "openpayer.db")
    return f"sqlite:///{folder / 'openpayer.db'}"


@pytest.fixture(scope="session")
def generated_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    """One store per test session (and xdist worker) holding a small generated plan: (URL, rejections).

    Its own database, so that the per-test emptying of the shared test database cannot touch it."""
    try:
        from openpayer.seed.generator import generate_plan
    except ImportError as missing:  # the data generator is optional here
        pytest.skip(f"the data generator is not available: {missing}")
    dropped: str | None = None
    if os.environ.get("OPENPAYER_TEST_BACKEND", "sqlite") == "postgresql":
        base: str = request.getfixturevalue("postgres_url")
        head, _, name = base.rpartition("/")
        url = dropped = f"{head}/{name}_generated"
        _recreate(head, f"{name}_generated")
        upgrade(Settings(database_url=url, secret_key="test"))
    else:
        template: Path = request.getfixturevalue("sqlite_template")
        folder = tmp_path_factory.mktemp("generated")
        shutil.copyfile(template, folder / "openpayer.db")
        url = f"sqlite:///{folder / 'openpayer.db'}"
    home = tmp_path_factory.mktemp("home")
    services = build_services(Settings(home=home, database_url=url, secret_key="conformance"))
    rejected: dict[str, str] = {}
    with write_transaction(services.engine) as conn:  # validated one by one, written in one transaction
        for resource in generate_plan(GENERATED_MEMBERS, seed=1):
            try:
                services.fhir.check_update(resource["resourceType"], resource["id"], resource)
            except FHIRError as error:
                rejected[f"{resource['resourceType']}/{resource['id']}"] = support.reason(error)
                continue
            services.fhir.update_in(conn, ENV, resource)
    services.engine.dispose()
    yield url, rejected
    if dropped is not None:
        _recreate(dropped.rpartition("/")[0], dropped.rpartition("/")[2], create=False)


def _recreate(server: str, name: str, *, create: bool = True) -> None:
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if create:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


@pytest.fixture(scope="module", params=["examples", "generated", "seeded"])
def dataset(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    module = request.module
    rejected: dict[str, str] = {}
    if request.param == "seeded":
        if not SEEDED_URL:
            pytest.skip(
                "no seeded sandbox: set OPENPAYER_CONFORMANCE_DATABASE_URL to a store the generator filled"
            )
        url = SEEDED_URL
    elif request.param == "generated":
        url, rejected = request.getfixturevalue("generated_store")
    else:
        for spec in module.SOURCES:
            if not support.source(spec).exists():
                pytest.skip(f"reference data {support.source(spec)} is not available")
        url = _fresh_store(request, tmp_path_factory)
    home = tmp_path_factory.mktemp("home")
    settings = Settings(home=home, database_url=url, secret_key="conformance")
    services = build_services(settings)
    if request.param == "examples":
        rejected = support.load(services, module.SOURCES)
        for resource in module.supplement(support.stored(services)) if hasattr(module, "supplement") else []:
            try:
                services.fhir.update(ENV, resource["resourceType"], resource["id"], resource)
            except FHIRError as error:
                rejected[f"supplement#{resource['resourceType']}/{resource['id']}"] = support.reason(error)
    app = create_app(settings, services=services)
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as client:
        headers = {"Prefer": "handling=strict", "Authorization": f"Bearer {support.system_token(services)}"}
        yield support.Dataset(request.param, ENV, client, headers, support.stored(services), rejected)
    services.engine.dispose()


@pytest.fixture(scope="module")
def runner(request: pytest.FixtureRequest, dataset: Any) -> Any:
    module = request.module
    return support.Runner(load_index(), module.GUIDE, module.API, dataset)


def check(runner: Any, case: Any, known_failures: dict[str, str]) -> None:
    """Run `case`; skip it when the data cannot exercise it; a known failure is an expected failure."""
    if case.id in known_failures:
        pytest.xfail(known_failures[case.id])
    try:
        outcome = runner.run(case)
    except support.NoData as missing:
        pytest.skip(f"not exercised by the {runner.data.name} data: {missing}")
    sizes = f"{len(outcome.expected_matches)} + {len(outcome.expected_included)}"
    print(f"CASE {case.id} {outcome.query} -> {sizes}")
    assert outcome.got_matches == outcome.expected_matches, outcome.query
    assert outcome.got_included == outcome.expected_included, outcome.query


@pytest.fixture
def conformance(runner: Any) -> Any:
    return lambda case, known_failures=None: check(runner, case, known_failures or {})
