"""The Alembic history and the table models describe the same schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError
from tests.fhir.test_index_integrity import index_problems

import openpayer.models  # noqa: F401 - every domain's tables
from openpayer.bootstrap import Services
from openpayer.config import Settings
from openpayer.db import make_engine, metadata, write_transaction
from openpayer.fhir.storage.tables import fhir_resource, idx_date, idx_reference, idx_token, index_key
from openpayer.migrate import alembic_config, head_revision, upgrade


def test_migrations_match_models(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_sqlite_runs_in_wal_mode(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_postgresql_knows_how_index_values_depend_on_their_parameter(engine: Engine) -> None:
    """Without these statistics a chained directory search started from the wrong side (80 ms, not 5)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        names = set(conn.exec_driver_sql("SELECT stxname FROM pg_statistic_ext").scalars())
        index = conn.exec_driver_sql(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_fhir_resource_env_type_rid'"
        ).scalar_one()
    assert {
        "st_fhir_idx_token_hkey_code",
        "st_fhir_idx_string_hkey_value_norm",
        "st_fhir_idx_uri_hkey_value",
    } <= names
    assert "INCLUDE (id, deleted)" in index


def test_postgresql_samples_token_values_widely_and_string_values_at_the_default(engine: Engine) -> None:
    """The token statistics' target of 1,000 picks where a chain starts; the string values' default keeps a
    prefix search's planning cheap (migration 0029: 0.9 ms of planning at 1,000)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        extended = dict(conn.exec_driver_sql("SELECT stxname, stxstattarget FROM pg_statistic_ext").all())
        columns = dict(
            conn.exec_driver_sql(
                "SELECT attrelid::regclass::text || '.' || attname, attstattarget FROM pg_attribute"
                " WHERE attrelid IN ('fhir_idx_token'::regclass, 'fhir_idx_string'::regclass)"
                " AND attname IN ('code', 'value_norm')"
            ).all()
        )
    assert extended["st_fhir_idx_token_hkey_code"] == 1000
    assert extended["st_fhir_idx_string_hkey_value_norm"] == -1
    assert columns == {"fhir_idx_token.code": 1000, "fhir_idx_string.value_norm": -1}


def test_postgresql_keeps_the_common_pairs_and_no_dependencies_the_planner_would_not_use(
    engine: Engine,
) -> None:
    """Migration 0034: an MCV list on (hkey, value) estimates every clause pair a search writes before
    dependencies are consulted; computing them was a third of ANALYZE on the token values."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        kinds = dict(
            conn.exec_driver_sql(
                "SELECT stxname, array_to_string(stxkind, ',') FROM pg_statistic_ext"
                " WHERE stxname LIKE 'st_fhir_%%'"
            ).all()
        )
    assert kinds == {
        "st_fhir_idx_token_hkey_code": "m",
        "st_fhir_idx_string_hkey_value_norm": "m",
        "st_fhir_idx_uri_hkey_value": "m",
    }


def _catalogue(path: Path) -> dict[str, Any]:
    """Everything SQLite knows of a database's schema and rows, in a form two databases compare by."""
    with sqlite3.connect(path) as conn:
        master = sorted(conn.execute("SELECT type, name, tbl_name FROM sqlite_master"))
        found: dict[str, Any] = {"master": master}
        for kind, name, _ in master:
            if kind == "table":
                found[name] = {
                    # by name: a column a migration added comes last there, in the model's place here
                    "columns": sorted(row[1:] for row in conn.execute(f'PRAGMA table_xinfo("{name}")')),
                    "foreign keys": sorted(
                        row[2:] for row in conn.execute(f'PRAGMA foreign_key_list("{name}")')
                    ),
                    "rows": sorted(conn.execute(f'SELECT * FROM "{name}"')),
                }
            elif kind == "index":
                sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
                where = None  # a partial index's condition, quotes and spacing aside
                if sql is not None and " WHERE " in sql:
                    where = " ".join(sql.split(" WHERE ", 1)[1].replace('"', "").split())
                found[name] = {
                    "columns": [row[1:] for row in conn.execute(f'PRAGMA index_xinfo("{name}")')],
                    "unique": sql is not None and sql.upper().startswith("CREATE UNIQUE"),
                    "where": where,
                }
    return found


def test_an_empty_sqlite_database_gets_the_schema_the_whole_history_gives(tmp_path: Path) -> None:
    """`upgrade` creates an empty SQLite database's tables from the models and stamps it; the history run
    from the start gives the same tables, columns, keys, indexes (in order, partial ones' conditions
    too) and rows, the same revision included. (This found the policy domain's tables missing from
    `openpayer.models`.)"""
    made = {}
    for way, whole in (("shortcut", False), ("history", True)):
        home = tmp_path / way
        upgrade(
            Settings(database_url=f"sqlite:///{home / 'openpayer.db'}", home=home, secret_key="test"),
            whole_history=whole,
        )
        made[way] = _catalogue(home / "openpayer.db")
    assert made["shortcut"]["alembic_version"]["rows"] == [(head_revision(),)]
    assert len(made["shortcut"]["master"]) > 100
    assert made["shortcut"] == made["history"]


def test_the_head_revision_read_from_file_names_is_alembics(tmp_path: Path) -> None:
    config = alembic_config(f"sqlite:///{tmp_path / 'x.db'}")
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()


def test_a_database_that_is_not_empty_goes_through_the_history(tmp_path: Path) -> None:
    """A database holding anything at all, an older revision's tables or another program's, is migrated
    (or refused) by the history, never created over."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'openpayer.db'}", home=tmp_path, secret_key="test"
    )
    upgrade(settings, "0030")
    upgrade(settings)
    with sqlite3.connect(tmp_path / "openpayer.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head_revision(),)]
    assert _catalogue(tmp_path / "openpayer.db")["master"] == _catalogue_of_head(tmp_path / "fresh")["master"]


def _catalogue_of_head(home: Path) -> dict[str, Any]:
    upgrade(Settings(database_url=f"sqlite:///{home / 'openpayer.db'}", home=home, secret_key="test"))
    return _catalogue(home / "openpayer.db")


def test_a_failed_sqlite_upgrade_leaves_nothing_half_done(tmp_path: Path) -> None:
    """On SQLite the whole upgrade is one transaction (migrations/env.py): when a migration fails, the
    tables of the ones before it are rolled back too, and the file is as it was."""
    path = tmp_path / "openpayer.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE job_run (id INTEGER)")  # migration 0006 creates it: it fails there
    with pytest.raises(OperationalError, match="already exists"):
        upgrade(Settings(database_url=f"sqlite:///{path}", home=tmp_path, secret_key="test"))
    with sqlite3.connect(path) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert names == {"job_run"}


def test_upgrading_past_0030_deletes_the_index_rows_no_search_reads(
    settings: Settings, engine: Engine, client: TestClient
) -> None:
    """`_id` and `_lastUpdated` are searched on the resource row; rows stored for them before are removed,
    and every other index row stays."""
    created = client.post("/sandbox/fhir/Patient", json={"resourceType": "Patient", "gender": "female"})
    pid = created.json()["id"]
    command.downgrade(alembic_config(settings.resolved_database_url), "0029")
    with write_transaction(engine) as conn:
        rid = conn.execute(select(fhir_resource.c.rid).where(fhir_resource.c.id == pid)).scalar_one()
        before = conn.execute(select(func.count()).select_from(idx_token)).scalar_one()
        id_key, updated_key = (index_key("sandbox", "Patient", code) for code in ("_id", "_lastUpdated"))
        conn.execute(idx_token.insert().values(rid=rid, hkey=id_key, code=pid))
        conn.execute(idx_date.insert().values(rid=rid, hkey=updated_key, low=1, high=2))
    upgrade(settings)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(idx_token)).scalar_one() == before
        assert conn.execute(select(func.count()).select_from(idx_date)).scalar_one() == 0
    query = {"_id": pid, "gender": "female", "_lastUpdated": "gt2000"}
    found = client.get("/sandbox/fhir/Patient", params=query)
    assert [entry["resource"]["id"] for entry in found.json()["entry"]] == [pid]


def test_upgrading_past_0031_gives_stored_references_their_targets_rid(
    settings: Settings, engine: Engine, services: Services, client: TestClient
) -> None:
    """The rows stored before the column existed get the rid of their target in their own environment (a
    production reference to an id that only the sandbox holds stays empty), and chains find them."""

    def observation(target: str) -> dict[str, object]:
        code = {"coding": [{"system": "http://loinc.org", "code": "1234-5"}]}
        return {
            "resourceType": "Observation",
            "status": "final",
            "code": code,
            "subject": {"reference": target},
        }

    target = {"resourceType": "Patient", "id": "p", "name": [{"family": "Target"}]}
    services.fhir.update("sandbox", "Patient", "p", target)
    services.fhir.update("sandbox", "Observation", "o", {"id": "o", **observation("Patient/p")})
    services.fhir.update("sandbox", "Observation", "lost", {"id": "lost", **observation("Patient/nobody")})
    services.fhir.update("production", "Observation", "o", {"id": "o", **observation("Patient/p")})
    command.downgrade(alembic_config(settings.resolved_database_url), "0030")
    upgrade(settings)
    with engine.connect() as conn:
        stored = conn.execute(select(func.count(idx_reference.c.target_rid))).scalar_one()
    assert stored == 2  # the sandbox Observation's `subject` and `patient` rows
    assert index_problems(engine) == []
    found = client.get("/sandbox/fhir/Observation", params={"subject:Patient.family": "target"})
    assert [entry["resource"]["id"] for entry in found.json()["entry"]] == ["o"]


def test_the_url_index_holds_only_references_with_a_url_and_url_searches_still_read_it(
    engine: Engine, services: Services, client: TestClient
) -> None:
    """Migration 0032: local references (no URL) are not in `(hkey, url)`, and a search by URL can still
    use the index (its `url = ...` implies the index's `url IS NOT NULL`)."""
    claim = {
        "resourceType": "Claim",
        "id": "c",
        "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "oral"}]},
        "use": "claim",
        "patient": {"reference": "Patient/p"},
        "created": "2026-01-01",
        "provider": {"reference": "https://elsewhere.example/fhir/Organization/o"},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/v"}}],
    }
    services.fhir.update("sandbox", "Claim", "c", claim)
    url = "https://elsewhere.example/fhir/Organization/o"
    found = client.get("/sandbox/fhir/Claim", params={"provider": url})
    assert [entry["resource"]["id"] for entry in found.json()["entry"]] == ["c"]
    assert client.get("/sandbox/fhir/Claim", params={"provider": url + "x"}).json().get("entry") is None
    hkey = index_key("sandbox", "Claim", "provider")
    query = "SELECT rid FROM fhir_idx_reference WHERE hkey = {0} AND url = {1}"
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            definition = conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_fhir_idx_reference_hkey_url'"
            ).scalar_one()
            assert definition.endswith("WHERE (url IS NOT NULL)")
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = conn.exec_driver_sql("EXPLAIN " + query.format("%s", "%s"), (hkey, url)).scalars()
        else:
            definition = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'ix_fhir_idx_reference_hkey_url'"
            ).scalar_one()
            assert definition.endswith("WHERE url IS NOT NULL")
            plan = (
                row[-1]
                for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + query.format("?", "?"), (hkey, url))
            )
        assert "ix_fhir_idx_reference_hkey_url" in " ".join(plan)
        local = conn.execute(
            select(func.count()).select_from(idx_reference).where(idx_reference.c.url.is_(None))
        ).scalar_one()
    assert local >= 1  # `Coverage/v`: stored, and searchable by its id, outside this index
    assert client.get("/sandbox/fhir/Claim", params={"coverage": "Coverage/v"}).json()["total"] == 1


def test_postgresql_keeps_stored_resources_in_their_row_without_compressing_them_again(
    engine: Engine,
) -> None:
    """Migration 0033: `content` is Zstandard already; PostgreSQL neither compresses it nor moves it out
    of the row below a page's size."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        found = conn.exec_driver_sql(
            "SELECT c.relname, a.attstorage, c.reloptions FROM pg_class c "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'content' "
            "WHERE c.relname IN ('fhir_resource', 'fhir_history') ORDER BY c.relname"
        ).all()
    assert [tuple(row) for row in found] == [
        ("fhir_history", "e", ["toast_tuple_target=8160"]),
        ("fhir_resource", "e", ["toast_tuple_target=8160"]),
    ]


def test_a_database_at_the_head_revision_is_left_as_it_is_without_alembic(
    tmp_path: Path, database_url: str
) -> None:
    """`upgrade` at every start (`openpayer serve`, `make run`) reads the stamped revision and stops there;
    a database behind it is migrated (the test above), and one stamped with an unknown revision is
    Alembic's to refuse."""
    settings = Settings(database_url=database_url, home=tmp_path, secret_key="test")
    code = (
        "import sys\n"
        "from openpayer.config import Settings\n"
        "from openpayer.migrate import upgrade\n"
        f"upgrade(Settings(database_url={database_url!r}, home={str(tmp_path)!r}, secret_key='test'))\n"
        "print('alembic' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"

    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    with pytest.raises(CommandError, match="9999"):
        upgrade(settings)
