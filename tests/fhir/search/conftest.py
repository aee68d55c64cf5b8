"""Search engine fixtures: the same corpus on SQLite and on PostgreSQL (one schema per test session).

PostgreSQL comes from OPENPAYER_TEST_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/openpayer_test); the database is created when missing and the session's
schema is dropped at the end. When the server is not reachable the PostgreSQL half of every test is skipped
with the reason.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from openpayer.db import make_engine, metadata, read_connection, write_transaction
from openpayer.fhir.paging import CursorSigner
from openpayer.fhir.search.bundle import SearchResult
from openpayer.fhir.search.extract import extract_index
from openpayer.fhir.search.registry import default_registry
from openpayer.fhir.search.service import SearchService
from openpayer.fhir.storage import tables  # noqa: F401  (registers the tables on metadata)
from openpayer.fhir.storage.repository import ResourceRepository


def _load_corpus() -> list[dict[str, Any]]:
    spec = importlib.util.spec_from_file_location(
        "search_corpus", Path(__file__).with_name("search_corpus.py")
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    corpus: list[dict[str, Any]] = module.CORPUS
    return corpus


CORPUS = _load_corpus()

BASE = "http://testserver/fhir"
ENV = "conf"
PG_URL = os.environ.get("OPENPAYER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/openpayer_test")


@dataclass
class Store:
    backend: str
    engine: Engine
    service: SearchService
    signer: CursorSigner

    def put(self, resources: Iterable[dict[str, Any]], env: str = ENV) -> None:
        repo = ResourceRepository(extract_index)
        with write_transaction(self.engine) as conn:
            for resource in resources:
                repo.put(conn, env, resource)

    def delete(self, rtype: str, rid: str, env: str = ENV) -> None:
        with write_transaction(self.engine) as conn:
            ResourceRepository(extract_index).delete(conn, env, rtype, rid)

    def search(
        self, rtype: str | None, query: str | list[tuple[str, str]], env: str = ENV, **kw: Any
    ) -> SearchResult:
        params = parse_qs(query) if isinstance(query, str) else query
        with read_connection(self.engine) as conn:
            return self.service.search(conn, env, rtype, params, base_url=BASE, **kw)


def parse_qs(query: str) -> list[tuple[str, str]]:
    """Like urllib's, but keeps `+` and does not drop blank values; tests write queries unencoded."""
    pairs = []
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((name, value))
    return pairs


def ids(result: SearchResult) -> set[str]:
    return {f"{e.resource_type}/{e.id}" for e in result.matches}


def included(result: SearchResult) -> set[str]:
    return {f"{e.resource_type}/{e.id}" for e in result.included}


Store.ids = staticmethod(ids)  # type: ignore[attr-defined]
Store.included = staticmethod(included)  # type: ignore[attr-defined]


def _pg_engine() -> tuple[Engine, str]:
    url = make_url(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}
            ).first()
            if exists is None:
                with contextlib.suppress(Exception):  # created concurrently by another worker
                    conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    finally:
        admin.dispose()
    schema = f"search_{uuid.uuid4().hex[:12]}"
    engine = make_engine(url.render_as_string(hide_password=False))

    @event.listens_for(engine, "connect")
    def _search_path(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET search_path TO {schema}")
        dbapi_connection.commit()

    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    return engine, schema


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    schema = None
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("search") / "search.db"
        engine = make_engine(f"sqlite:///{path}")
    else:
        try:
            engine, schema = _pg_engine()
        except Exception as exc:
            pytest.skip(f"PostgreSQL is not reachable at {PG_URL}: {exc}")
    metadata.create_all(engine)
    signer = CursorSigner("test-secret")
    service = SearchService(default_registry(), signer, default_count=50, max_count=200, include_cap=1000)
    store = Store(request.param, engine, service, signer)
    store.put(CORPUS)
    for rtype, rid in (("Patient", "pdel"),):
        store.delete(rtype, rid)
    yield store
    if schema is not None:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()
