"""`openpayer members create`: a login reaches an existing Patient, and a refused password says why."""

from __future__ import annotations

from typer.testing import CliRunner

from openpayer.app import Services
from openpayer.cli.main import app


def test_create_refuses_a_patient_the_environment_does_not_have(cli: CliRunner, services: Services) -> None:
    result = cli.invoke(
        app,
        [
            "members",
            "create",
            "sandbox",
            "--username",
            "maria",
            "--password",
            "long enough pw",
            "--patient",
            "nope",
        ],
    )
    assert result.exit_code == 2
    assert "no Patient/nope in sandbox" in result.output
    assert services.auth.members.authenticate("sandbox", "maria", "long enough pw") is None


def test_create_says_which_password_rule_broke(cli: CliRunner, services: Services) -> None:
    pid = services.fhir.create("sandbox", "Patient", {"resourceType": "Patient"}).stored.id
    result = cli.invoke(
        app, ["members", "create", "sandbox", "--username", "maria", "--password", "s3cr", "--patient", pid]
    )
    assert result.exit_code == 2
    assert "too short" in result.output
    assert "at least 8" in result.output
    assert "s3cr" not in result.output
    created = cli.invoke(
        app,
        [
            "members",
            "create",
            "sandbox",
            "--username",
            "maria",
            "--password",
            "a long passphrase",
            "--patient",
            pid,
        ],
    )
    assert created.exit_code == 0, created.output
    assert f"Patient/{pid}" in created.output
    taken = cli.invoke(
        app,
        [
            "members",
            "create",
            "sandbox",
            "--username",
            "maria",
            "--password",
            "another passphrase",
            "--patient",
            pid,
        ],
    )
    assert taken.exit_code == 2
    assert "'maria' is taken" in taken.output
