"""`openpayer load` killed with SIGKILL mid-load leaves only whole batches, and a second load completes it.

The load runs through the CLI in a process group of its own (main process and workers); once some batches
have committed, the whole group gets SIGKILL. What is stored then must be consistent: every current row
has its history row with the same bytes, every index row belongs to a stored resource and equals a fresh
extraction of it (`index_problems`), and nothing is there twice. Loading the same file again stores the rest
and leaves the first part unchanged.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
from sqlalchemy import func, select
from tests.fhir.test_index_integrity import index_problems

from openpayer.bootstrap import Services
from openpayer.config import Settings
from openpayer.db import read_connection
from openpayer.fhir.loading import Loader
from openpayer.fhir.storage.tables import fhir_history, fhir_resource

TOTAL = 12_000


def _patients(path: Path) -> Path:
    with path.open("wb") as out:
        for i in range(TOTAL):
            patient = {
                "resourceType": "Patient",
                "id": f"killed-{i:06d}",
                "identifier": [{"system": "urn:test:member", "value": f"M{i:06d}"}],
                "name": [{"family": f"Family{i % 97}", "given": ["Pat"]}],
                "gender": "female" if i % 2 else "male",
                "birthDate": f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10}",
            }
            out.write(orjson.dumps(patient) + b"\n")
    return path


def _counts(services: Services) -> tuple[int, int, int]:
    with read_connection(services.engine) as conn:
        resources = conn.execute(select(func.count()).select_from(fhir_resource)).scalar_one()
        history = conn.execute(select(func.count()).select_from(fhir_history)).scalar_one()
        unmatched = conn.execute(
            select(func.count())
            .select_from(fhir_resource)
            .outerjoin(
                fhir_history,
                (fhir_history.c.seq == fhir_resource.c.seq)
                & (fhir_history.c.id == fhir_resource.c.id)
                & (fhir_history.c.content == fhir_resource.c.content),
            )
            .where(fhir_history.c.seq.is_(None))
        ).scalar_one()
    return int(resources), int(history), int(unmatched)


def _start_load(settings: Settings, path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "OPENPAYER_HOME": str(settings.home),
        "OPENPAYER_DATABASE_URL": settings.resolved_database_url,
        "OPENPAYER_SECRET_KEY": "test-secret",
    }
    command = [sys.executable, "-c", "from openpayer.cli.main import app; app()"]
    args = ["load", "sandbox", str(path), "--workers", "1", "--batch-size", "100", "--quiet", "--no-migrate"]
    return subprocess.Popen(
        [*command, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the workers are killed with it
    )


def test_a_load_killed_with_sigkill_leaves_nothing_half_written(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    path = _patients(tmp_path / "patients.ndjson")
    process = _start_load(settings, path)
    try:
        deadline = time.monotonic() + 120
        while _counts(services)[0] == 0:
            assert process.poll() is None, "the load ended before writing anything"
            assert time.monotonic() < deadline, "the load wrote nothing in 120 s"
            time.sleep(0.05)
        time.sleep(0.2)  # a few more batches: the kill lands while one is being written or prepared
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the load ended before it was killed"

    resources, history, unmatched = _counts(services)
    assert 0 < resources < TOTAL
    assert (history, unmatched) == (resources, 0)
    assert index_problems(services.engine) == []

    report = Loader(services.engine, "sandbox", matcher=services.search, workers=0).run([path])
    assert report.rejected == []
    assert (report.created, report.unchanged) == (TOTAL - resources, resources)
    assert _counts(services) == (TOTAL, TOTAL, 0)
    assert index_problems(services.engine) == []
