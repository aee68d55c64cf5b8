"""`openpayer load` through the command line (Typer's CliRunner): output, report, exit codes."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from openpayer.cli.main import app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "load"


def invoke(cli: CliRunner, *args: str) -> tuple[int, str, str]:
    result = cli.invoke(app, ["load", *args])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
        result.exception
    )
    return result.exit_code, result.stdout, result.output


def test_load_folder_prints_progress_and_summary(cli: CliRunner) -> None:
    code, stdout, output = invoke(cli, "sandbox", str(FIXTURES), "--workers", "0")
    assert code == 0, output
    assert "Loaded 9 resources (created 9, updated 0), 0 unchanged, 0 rejected, from 3 files" in stdout
    assert "resources/s" in output  # the progress bar (rendered once at the end without a terminal)
    code, stdout, _ = invoke(cli, "sandbox", str(FIXTURES), "--workers", "0", "--quiet")
    assert code == 0
    assert "0 resources (created 0, updated 0), 9 unchanged" in stdout


def test_json_report_and_worker_processes(cli: CliRunner) -> None:
    code, stdout, _ = invoke(cli, "sandbox", str(FIXTURES), "--json", "--quiet", "--workers", "2")
    assert code == 0
    report = orjson.loads(stdout)
    assert report["created"] == 9
    assert report["rejected"] == []
    assert report["files"] == 3
    assert set(report["timings"]) == {"parse", "validate", "index", "write"}


def test_rejections_are_listed_with_exit_code_1(cli: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "claims.ndjson"
    source.write_bytes(
        b'{"resourceType":"Patient","id":"ok"}\n'
        b'{"resourceType":"Patient","id":"bad","gender":"robot"}\n'
        b"{not json\n"
    )
    code, stdout, _ = invoke(cli, "sandbox", str(source), "-w", "0")
    assert code == 1
    assert "Rejected records (2)" in stdout
    assert "claims.ndjson" in stdout
    assert "Patient/bad" in stdout
    assert "Patient.gender" in stdout
    assert "invalid JSON" in stdout
    code, stdout, _ = invoke(cli, "sandbox", str(source), "-w", "0", "--json")
    assert code == 1
    rejected = orjson.loads(stdout)["rejected"]
    assert [(r["file"], r["line"], r["id"]) for r in rejected] == [
        (str(source), "2", "bad"),
        (str(source), "3", None),
    ]
    assert rejected[0]["issues"][0]["expression"] == "Patient.gender"


def test_garbage_is_reported_without_a_traceback(cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "binary.json").write_bytes(bytes(range(256)))
    (tmp_path / "empty.ndjson").write_bytes(b"")
    (tmp_path / "empty.json").write_bytes(b"  \n")
    (tmp_path / "other.json").write_bytes(b'{"not": "fhir"}')
    (tmp_path / "broken.ndjson.gz").write_bytes(b"\x1f\x8b garbage")
    (tmp_path / "readme.md").write_text("hello")
    code, stdout, output = invoke(cli, "sandbox", str(tmp_path), "-w", "0")
    assert code == 1
    assert "Traceback" not in output
    assert "Rejected records (4)" in stdout
    assert "readme.md: skipped" in stdout
    assert "empty.ndjson: empty, nothing to load" in stdout


def test_unknown_environment_exits_2(cli: CliRunner) -> None:
    code, _, output = invoke(cli, "staging", str(FIXTURES))
    assert code == 2
    assert "Unknown environment 'staging'" in output
    assert "sandbox" in output


def test_missing_path_exits_2(cli: CliRunner, tmp_path: Path) -> None:
    code, _, output = invoke(cli, "sandbox", str(tmp_path / "nope"))
    assert code == 2
    assert "No such file or folder" in output


def test_profile_check_option(cli: CliRunner, tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[3] / "shared" / "ig" / "carin-bb-2.0.0" / "example"
    path = example / "ExplanationOfBenefit-EOBInpatient1.json"
    if not path.exists():
        pytest.skip(f"reference data {path} is not available")
    good = orjson.loads(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    bad = {key: value for key, value in good.items() if key != "identifier"} | {"id": "bad-eob"}
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "eob.json").write_bytes(orjson.dumps(good))
    source = tmp_path / "eob.ndjson"
    source.write_bytes(orjson.dumps(bad) + b"\n")
    code, stdout, output = invoke(cli, "sandbox", str(tmp_path / "good"), "-w", "0", "--profile-check")
    assert code == 0, output
    assert "created 1" in stdout
    code, stdout, _ = invoke(cli, "sandbox", str(source), "-w", "0", "--profile-check", "--json")
    assert code == 1
    rejected = orjson.loads(stdout)["rejected"]
    assert [(r["line"], r["id"]) for r in rejected] == [("1", "bad-eob")]
    assert rejected[0]["issues"][0]["expression"] == "ExplanationOfBenefit.identifier"
    assert "requires at least 1" in rejected[0]["issues"][0]["diagnostics"]
    code, stdout, _ = invoke(cli, "sandbox", str(source), "-w", "0", "--quiet")
    assert code == 0
    assert "created 1" in stdout
