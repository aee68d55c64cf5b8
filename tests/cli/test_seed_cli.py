"""`openpayer seed` through the command line (Typer's CliRunner) and the FHIR HTTP API it fills."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from openpayer.cli import seed_slices
from openpayer.cli.main import app
from openpayer.clock import Clock
from openpayer.fhir.loading import BATCH_SIZE
from openpayer.members.accounts import MemberStore
from openpayer.members.models import member_account
from openpayer.members.sandbox import SANDBOX_MEMBERS
from openpayer.security.sealing import Sealer


def invoke(cli: CliRunner, *args: str) -> tuple[int, str, str]:
    result = cli.invoke(app, ["seed", *args])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
        result.exception
    )
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.output


def seed_json(cli: CliRunner, *args: str, workers: str = "0") -> dict[str, Any]:
    code, stdout, output = invoke(cli, *args, "--workers", workers, "--json")
    assert code == 0, output
    value: dict[str, Any] = orjson.loads(stdout)
    return value


def total(client: TestClient, path: str) -> int:
    response = client.get(path, params={"_summary": "count"})
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the command makes the slices' folders for this test (`tempfile.mkdtemp`)."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def logins(engine: Engine, env: str) -> int:
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).where(member_account.c.env == env)).scalar_one()
    return int(count)


# "0": everything in this process; "1": each slice written by a forked child, which also hashes the logins
@pytest.mark.parametrize("workers", ["0", "1"])
def test_seed_sandbox_loads_the_plan_once_and_creates_the_test_logins(
    cli: CliRunner,
    client: TestClient,
    engine: Engine,
    tmp_path: Path,
    scratch: Path,
    monkeypatch: pytest.MonkeyPatch,
    workers: str,
) -> None:
    monkeypatch.setattr(seed_slices, "SLICE_MEMBERS", 2)  # 3 members: two slices, as a large plan would be
    expected = seed_json(cli, "sandbox", "--members", "3", "--seed", "7", "--ndjson", str(tmp_path / "nd"))
    first = seed_json(cli, "sandbox", "--members", "3", "--seed", "7", workers=workers)
    assert list(scratch.iterdir()) == []  # each slice's folder is removed once loaded
    assert first["counts"] == expected["counts"]
    assert first["load"]["created"] == sum(expected["counts"].values()) == expected["resources"]
    assert first["load"]["rejected"] == []
    assert set(first["phases"]) == {"migrate", "services", "generate", "load", "logins"}
    assert [(x["username"], x["created"]) for x in first["logins"]] == [
        (u, True) for u, _, _ in SANDBOX_MEMBERS
    ]

    # Every generated resource is served, the members through the FHIR API and the directory publicly.
    for rtype, count in expected["counts"].items():
        assert total(client, f"/sandbox/fhir/{rtype}") == count, rtype
    patient = client.get("/sandbox/fhir/Patient/member-000001").json()
    assert patient["name"][0]["family"] == "Sandoval"
    assert total(client, "/sandbox/directory/Practitioner") == expected["counts"]["Practitioner"]
    eobs = total(client, "/sandbox/fhir/ExplanationOfBenefit?patient=member-000002")
    assert eobs > 0
    # Slices load exactly what one pass writes: member 3 (in the second slice) is served as generated.
    written = (tmp_path / "nd" / "ExplanationOfBenefit.ndjson").read_bytes().splitlines()
    generated = [orjson.loads(line) for line in written]
    theirs = [r for r in generated if r["patient"]["reference"] == "Patient/member-000003"]
    assert theirs
    for resource in theirs:
        served = client.get(f"/sandbox/fhir/ExplanationOfBenefit/{resource['id']}").json()
        assert {k: v for k, v in served.items() if k != "meta"} == {
            k: v for k, v in resource.items() if k != "meta"
        }

    # The published test members can sign in.
    store = MemberStore(engine, Clock(), Sealer("test-secret"))
    for username, password, patient_id in SANDBOX_MEMBERS:
        member = store.authenticate("sandbox", username, password)
        assert member is not None
        assert member.patient_id == patient_id

    # Seeding again with the same arguments writes nothing: one version of each resource.
    again = seed_json(cli, "sandbox", "--members", "3", "--seed", "7", workers=workers)
    assert (again["load"]["created"], again["load"]["updated"]) == (0, 0)
    assert again["load"]["unchanged"] == first["load"]["created"]
    assert [x["created"] for x in again["logins"]] == [False, False, False]
    history = client.get("/sandbox/fhir/Patient/member-000001/_history").json()
    assert len(history["entry"]) == 1
    assert client.get("/sandbox/fhir/Patient/member-000001").json()["meta"]["versionId"] == "1"
    assert logins(engine, "sandbox") == len(SANDBOX_MEMBERS)


def test_ndjson_is_deterministic_and_loads_nothing(
    cli: CliRunner, client: TestClient, engine: Engine, tmp_path: Path
) -> None:
    code, stdout, _ = invoke(cli, "sandbox", "-n", "2", "--seed", "3", "--ndjson", str(tmp_path / "a"))
    assert code == 0
    assert "nothing was loaded" in stdout
    invoke(cli, "sandbox", "-n", "2", "--seed", "3", "--ndjson", str(tmp_path / "b"), "-q")
    invoke(cli, "sandbox", "-n", "2", "--seed", "4", "--ndjson", str(tmp_path / "c"), "-q")
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert {"Patient.ndjson", "ExplanationOfBenefit.ndjson"} <= set(names)
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    patients_a = (tmp_path / "a" / "Patient.ndjson").read_bytes()
    # The test members are the same for every seed; their claims are drawn from it.
    assert patients_a == (tmp_path / "c" / "Patient.ndjson").read_bytes()
    eobs = "ExplanationOfBenefit.ndjson"
    assert (tmp_path / "a" / eobs).read_bytes() != (tmp_path / "c" / eobs).read_bytes()
    ids = [orjson.loads(line)["id"] for line in patients_a.splitlines()]
    assert ids == ["member-000001", "member-000002"]

    assert total(client, "/sandbox/fhir/Patient") == 0
    assert total(client, "/sandbox/directory/Organization") == 0
    assert logins(engine, "sandbox") == 0


@pytest.mark.parametrize("workers", ["0", "1"])
def test_if_empty_skips_an_environment_that_holds_resources(
    cli: CliRunner, client: TestClient, engine: Engine, scratch: Path, workers: str
) -> None:
    created = client.post("/sandbox/fhir/Patient", json={"resourceType": "Patient", "gender": "female"})
    assert created.status_code == 201
    code, stdout, output = invoke(cli, "sandbox", "-n", "2", "--if-empty", "-w", workers)
    assert code == 0, output
    assert "sandbox already holds resources: not seeded" in stdout
    assert list(scratch.iterdir()) == []  # the first slice's folder is removed (and its child stopped)
    assert total(client, "/sandbox/fhir/Patient") == 1
    assert logins(engine, "sandbox") == 0  # the test members' Patients are not there: no logins


@pytest.mark.parametrize("workers", ["0", "1"])
def test_a_plan_that_cannot_be_written_is_reported_and_nothing_is_loaded(
    cli: CliRunner,
    client: TestClient,
    engine: Engine,
    scratch: Path,
    monkeypatch: pytest.MonkeyPatch,
    workers: str,
) -> None:
    def full_disk(resources: object, folder: Path) -> dict[str, int]:
        raise OSError(28, "No space left on device", str(folder / "Patient.ndjson"))

    monkeypatch.setattr(seed_slices, "write_ndjson", full_disk)  # a forked child inherits the patch
    code, _, output = invoke(cli, "sandbox", "-n", "2", "-w", workers, "-q")
    assert code == 1
    assert "Cannot write the plan into a temporary folder: [Errno 28] No space left on device" in output
    assert total(client, "/sandbox/fhir/Patient") == 0
    assert total(client, "/sandbox/directory/Organization") == 0
    assert logins(engine, "sandbox") == 0
    assert list(scratch.iterdir()) == []


def test_a_generator_that_dies_is_reported(
    cli: CliRunner, client: TestClient, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def dies(resources: object, folder: Path) -> dict[str, int]:
        os._exit(3)  # in the forked child: as if the kernel had stopped it

    monkeypatch.setattr(seed_slices, "write_ndjson", dies)
    code, _, output = invoke(cli, "sandbox", "-n", "2", "-w", "1", "-q")
    assert code == 1
    assert "the plan's generator stopped before the end (exit status 3)" in output
    assert total(client, "/sandbox/fhir/Patient") == 0
    assert list(scratch.iterdir()) == []


def test_help_names_the_loaders_batch_size(cli: CliRunner) -> None:
    code, stdout, _ = invoke(cli, "--help")
    assert code == 0
    assert f"the loader's, {BATCH_SIZE}" in stdout  # the option's default is the loader's own


def test_production_is_refused_and_never_gets_test_logins(
    cli: CliRunner, client: TestClient, engine: Engine
) -> None:
    code, _, output = invoke(cli, "production", "-n", "2")
    assert code == 2
    assert "Refusing to load synthetic data into production" in output
    code, _, output = invoke(cli, "production", "-n", "2", "--allow-production", "--test-logins")
    assert code == 2
    assert "never created in production" in output
    assert total(client, "/production/fhir/Patient") == 0

    # Allowed explicitly: the plan's directory is loaded, and still no login is created.
    report = seed_json(cli, "production", "-n", "0", "--allow-production")
    assert report["load"]["created"] > 0
    assert report["logins"] == []
    assert total(client, "/production/directory/InsurancePlan") == report["counts"]["InsurancePlan"]
    assert total(client, "/sandbox/directory/InsurancePlan") == 0
    assert logins(engine, "production") == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("staging", "-n", "2"), "Unknown environment 'staging'"),
        (("sandbox", "--members", "-1"), "must be 0 or more"),
        (("sandbox", "--members", "many"), "Invalid value for '--members'"),
        (("sandbox", "--start-date", "2025-13-01"), "Invalid value for '--start-date'"),
    ],
)
def test_bad_input_exits_2_with_a_readable_message(
    cli: CliRunner, args: tuple[str, ...], message: str
) -> None:
    code, _, output = invoke(cli, *args)
    assert code == 2
    assert message in output
