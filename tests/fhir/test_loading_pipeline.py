"""The loader's pipeline around the writes: what it warms before forking, its workers' priority, and the
SQLite log copied back while it loads."""

from __future__ import annotations

import gzip
import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from sqlalchemy import create_engine, func, select

from openpayer.bootstrap import Services
from openpayer.db import SQLITE_PAGE_SIZE, is_sqlite, make_engine, read_connection
from openpayer.fhir.loading import WORKER_NICENESS, Loader, first_types
from openpayer.fhir.preparing import warm
from openpayer.fhir.storage.checkpoint import BackgroundCheckpoint
from openpayer.fhir.storage.tables import fhir_resource

ENV = "sandbox"


def patients(count: int, start: int = 0) -> list[dict[str, object]]:
    return [
        {"resourceType": "Patient", "id": f"p{n}", "name": [{"family": f"Family{n}", "given": ["Ann", "B"]}]}
        for n in range(start, start + count)
    ]


def write_ndjson(path: Path, resources: list[dict[str, object]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in resources))
    return path


def test_first_types_are_read_from_the_first_line_of_each_ndjson_file(tmp_path: Path) -> None:
    claims = write_ndjson(tmp_path / "a.ndjson", [{"resourceType": "Claim", "id": "c"}])
    spaced = tmp_path / "b.ndjson"
    spaced.write_bytes(b'{"id": "x", "resourceType" :  "Coverage"}\n{"resourceType": "Patient"}\n')
    packed = tmp_path / "c.ndjson.gz"
    packed.write_bytes(gzip.compress(b'{"resourceType":"Organization","id":"o"}\n'))
    again = write_ndjson(tmp_path / "d.ndjson", [{"resourceType": "Claim", "id": "d"}])
    odd = tmp_path / "e.ndjson"
    odd.write_bytes(b'{"resourceType": "not a type"}\n')
    broken = tmp_path / "f.ndjson.gz"
    broken.write_bytes(b"not gzip at all")
    bundle = tmp_path / "g.json"
    bundle.write_bytes(b'{"resourceType": "Bundle"}')
    files = [claims, spaced, packed, again, odd, broken, bundle, tmp_path / "missing.ndjson"]

    assert first_types(files) == ["Claim", "Coverage", "Organization"]


def test_warming_unknown_or_partial_types_raises_nothing() -> None:
    warm(resource_types=["Claim", "NoSuchType", "Bundle", ""])


def test_a_worker_runs_below_the_writer_priority() -> None:
    code = (
        "import os\n"
        "from openpayer.fhir.loading import _yield_to_writer\n"
        "before = os.nice(0)\n"
        "_yield_to_writer()\n"
        "print(before, os.nice(0))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = map(int, done.stdout.split())
    assert after == min(before + WORKER_NICENESS, 19)


def test_a_sqlite_load_copies_its_log_back_into_the_database_file_as_it_goes(
    services: Services, tmp_path: Path
) -> None:
    if not is_sqlite(services.engine):
        pytest.skip("a SQLite write-ahead log")
    database = Path(str(services.engine.url.database))
    before = database.stat().st_size
    folder = tmp_path / "load"
    folder.mkdir()
    write_ndjson(folder / "Patient.ndjson", patients(600))

    report = Loader(services.engine, ENV, workers=0, batch_size=100).run([folder])
    assert report.created == 600

    # The engine's connections are still open, so nothing was copied at a close: the file holds the rows
    # (a log copied back only past 16,000 pages would have left them all in the -wal file).
    assert database.stat().st_size - before > 512 * 1024
    copy = make_engine(f"sqlite:///{tmp_path / 'copy.db'}")
    with copy.connect() as conn:  # the database file alone, without its log, holds every resource
        conn.exec_driver_sql(f"ATTACH DATABASE 'file:{database}?mode=ro&immutable=1' AS loaded")
        stored = conn.exec_driver_sql("SELECT count(*) FROM loaded.fhir_resource").scalar_one()
    copy.dispose()
    assert stored == 600
    with read_connection(services.engine) as conn:
        assert conn.execute(select(func.count()).select_from(fhir_resource)).scalar_one() == 600


def test_the_background_checkpoint_does_nothing_on_postgresql_or_in_memory(services: Services) -> None:
    memory = create_engine("sqlite://")
    assert not BackgroundCheckpoint(memory).enabled
    memory.dispose()
    checkpoint = BackgroundCheckpoint(services.engine)
    assert checkpoint.enabled == is_sqlite(services.engine)
    checkpoint.poke()
    checkpoint.wait()


def test_a_new_sqlite_database_has_16_kb_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    new = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    with new.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x)")
        assert conn.exec_driver_sql("PRAGMA page_size").scalar_one() == SQLITE_PAGE_SIZE
    new.dispose()

    old_path = tmp_path / "old.db"
    raw = sqlite3.connect(old_path)
    raw.execute("PRAGMA page_size=4096")
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("CREATE TABLE t (x)")
    raw.execute("INSERT INTO t VALUES (1)")
    raw.commit()
    raw.close()
    old = make_engine(f"sqlite:///{old_path}")
    with old.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar_one() == 4096
        assert conn.exec_driver_sql("SELECT x FROM t").scalar_one() == 1
    old.dispose()
