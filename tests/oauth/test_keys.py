"""Signing keys: generated on first use, private halves sealed at rest, rotation publishes both."""

from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select
from typer.testing import CliRunner

from openpayer.bootstrap import Services
from openpayer.cli.main import app as cli
from openpayer.config import Settings
from openpayer.oauth.models import oauth_signing_key


def test_keys_are_created_once_and_sealed(services: Services) -> None:
    keys = services.auth.keys
    first = keys.jwks("sandbox")
    assert len(first["keys"]) == 1
    assert "d" not in first["keys"][0]
    assert keys.jwks("sandbox") == first
    assert keys.jwks("production")["keys"][0]["kid"] != first["keys"][0]["kid"]
    with services.engine.connect() as conn:
        blob = conn.execute(select(oauth_signing_key.c.private_enc)).scalars().first()
    assert blob is not None
    assert b"PRIVATE KEY" not in blob


def test_rotation_publishes_both_and_signs_with_the_new(services: Services) -> None:
    keys = services.auth.keys
    old = keys.signing_key("sandbox").kid
    new = keys.rotate("sandbox")
    published = {k["kid"] for k in keys.jwks("sandbox")["keys"]}
    assert published == {old, new}
    assert keys.signing_key("sandbox").kid == new
    token = jwt.encode({"alg": "RS256", "kid": new}, {"sub": "x"}, keys.signing_key("sandbox"))
    keyset = KeySet.import_key_set(keys.jwks("sandbox"))  # type: ignore[arg-type]
    assert jwt.decode(token, keyset).claims["sub"] == "x"


def test_cli_registers_clients_members_and_rotates_keys(
    settings: Settings, services: Services, monkeypatch: object
) -> None:
    services.fhir.update("sandbox", "Patient", "p1", {"resourceType": "Patient", "id": "p1"})  # the login's
    env = {
        "OPENPAYER_DATABASE_URL": settings.resolved_database_url,
        "OPENPAYER_HOME": str(settings.home),
        "OPENPAYER_SECRET_KEY": "test-secret",
    }
    runner = CliRunner()
    registered = runner.invoke(
        cli,
        [
            "clients",
            "register",
            "sandbox",
            "--name",
            "CLI App",
            "--redirect-uri",
            "https://a.example/cb",
            "--confidential",
            "--json",
        ],
        env=env,
    )
    assert registered.exit_code == 0, registered.output
    assert '"client_secret"' in registered.output
    public = runner.invoke(
        cli,
        [
            "clients",
            "register",
            "sandbox",
            "--name",
            "SPA",
            "--redirect-uri",
            "https://a.example/cb",
            "--public",
            "--json",
        ],
        env=env,
    )
    assert '"client_secret"' not in public.output
    member = runner.invoke(
        cli,
        [
            "members",
            "create",
            "sandbox",
            "--username",
            "cli-member",
            "--password",
            "long enough pw",
            "--patient",
            "p1",
        ],
        env=env,
    )
    assert member.exit_code == 0, member.output
    assert "long enough pw" not in member.output
    rotated = runner.invoke(cli, ["keys", "rotate", "sandbox"], env=env)
    assert rotated.exit_code == 0, rotated.output
    assert "new signing key" in rotated.output
