"""`openpayer jobs`, `openpayer worker --once` and `openpayer email`, run in process against the test
database; and `openpayer serve`, which runs the job runner beside the HTTP server unless told not to."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select
from tests.jobs.conftest import SmtpServer
from tests.live import free_port
from typer.testing import CliRunner

from openpayer.bootstrap import Services
from openpayer.cli.main import app
from openpayer.config import Settings
from openpayer.db import write_transaction
from openpayer.jobs.tables import job_run
from openpayer.oauth.models import oauth_assertion_jti, oauth_code, oauth_token


def test_jobs_list_shows_schedule_last_and_next_runs_and_failures(
    cli: CliRunner, settings: Settings, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    result = cli.invoke(app, ["jobs", "list"])
    assert result.exit_code == 0, result.output
    assert "oauth.cleanup" in result.output
    assert "every 1h" in result.output
    assert "email.deliver" in result.output
    assert "on demand" in result.output
    assert "never" in result.output
    assert "No failed attempts recorded." in result.output

    assert cli.invoke(app, ["worker", "--once"]).exit_code == 0
    monkeypatch.setenv("OPENPAYER_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")  # nothing listens there
    failed = cli.invoke(app, ["email", "send-test", "ops@example.org"])
    assert failed.exit_code == 1
    assert "was not delivered" in failed.output
    assert "retries it with backoff" in failed.output

    result = cli.invoke(app, ["jobs", "list"])
    assert result.exit_code == 0, result.output
    cleanup_line = next(line for line in result.output.splitlines() if "oauth.cleanup" in line)
    assert "succeeded (attempt 1)" in cleanup_line
    deliver_line = next(line for line in result.output.splitlines() if "email.deliver" in line)
    assert " 1 " in deliver_line  # one queued, one failed attempt in the last day
    assert "Recent failures" in result.output
    assert "ConnectionRefusedError" in result.output


def test_jobs_run_cleans_up_expired_oauth_rows_and_keeps_live_ones(cli: CliRunner, engine: Engine) -> None:
    now = int(time.time())
    long_ago = now - 2 * 86400
    code = {
        "env": "sandbox",
        "client_id": "c",
        "grant_id": 1,
        "member_id": 1,
        "patient_id": "p",
        "redirect_uri": "http://localhost/cb",
        "scope": "openid",
        "code_challenge": "x",
        "auth_time": now,
    }
    token = {
        "env": "sandbox",
        "kind": "access",
        "client_id": "c",
        "scope": "openid",
        "issued_at": now,
        "revoked": False,
    }
    with write_transaction(engine) as conn:
        conn.execute(oauth_code.insert(), [dict(code, digest="old", expires_at=long_ago)])
        conn.execute(oauth_code.insert(), [dict(code, digest="new", expires_at=now + 60)])
        conn.execute(oauth_token.insert(), [dict(token, digest="old", expires_at=long_ago)])
        conn.execute(oauth_token.insert(), [dict(token, digest="recent", expires_at=now - 60)])
        conn.execute(oauth_token.insert(), [dict(token, digest="new", expires_at=now + 3600)])
        jti = {"env": "sandbox", "client_id": "c"}
        conn.execute(oauth_assertion_jti.insert(), [dict(jti, jti="a", expires_at=now - 1)])
        conn.execute(oauth_assertion_jti.insert(), [dict(jti, jti="b", expires_at=now + 300)])

    result = cli.invoke(app, ["jobs", "run", "oauth.cleanup"])
    assert result.exit_code == 0, result.output
    assert "removed 1 codes, 1 tokens, 1 assertion ids" in result.output
    with engine.connect() as conn:
        assert set(conn.execute(select(oauth_code.c.digest)).scalars()) == {"new"}
        assert set(conn.execute(select(oauth_token.c.digest)).scalars()) == {"recent", "new"}
        assert set(conn.execute(select(oauth_assertion_jti.c.jti)).scalars()) == {"b"}
        manual = conn.execute(select(job_run).where(job_run.c.run_key.like("manual-%"))).one()
    assert manual.status == "succeeded"

    unknown = cli.invoke(app, ["jobs", "run", "email.deliver"])
    assert unknown.exit_code == 2
    assert "No periodic job named 'email.deliver'" in unknown.output


def test_email_send_test_through_the_outbox_and_through_smtp(
    cli: CliRunner, settings: Settings, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer
) -> None:
    result = cli.invoke(app, ["email", "send-test", "ops@example.org"])
    assert result.exit_code == 0, result.output
    assert "sent through the outbox" in result.output
    assert [p.name for p in (settings.home / "outbox").iterdir()] == ["00000001.eml"]

    monkeypatch.setenv("OPENPAYER_SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}")
    monkeypatch.setenv("OPENPAYER_MAIL_FROM", "Payer Ops <ops@payer.example>")
    result = cli.invoke(app, ["email", "send-test", "ops@example.org"])
    assert result.exit_code == 0, result.output
    assert "sent through the SMTP relay" in result.output
    (envelope,) = smtp_server.relay.received
    assert envelope.mail_from == "ops@payer.example"
    assert envelope.rcpt_tos == ["ops@example.org"]

    listing = cli.invoke(app, ["email", "list"])
    assert listing.exit_code == 0
    assert listing.output.count("operator.send-test") == 2

    bad = cli.invoke(app, ["email", "send-test", "not an address"])
    assert bad.exit_code == 2
    assert "not an email address" in bad.output


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_serve_runs_the_job_runner_unless_turned_off(services: Services) -> None:
    settings, engine = services.settings, services.engine
    periodic = {definition.name for definition in services.background.registry.periodic_jobs()}

    def jobs_run_by_serve(jobs_in_serve: str) -> set[str]:
        port = free_port()
        env = dict(
            os.environ,
            OPENPAYER_DATABASE_URL=settings.resolved_database_url,
            OPENPAYER_HOME=str(settings.home),
            OPENPAYER_SECRET_KEY="test-secret",
            OPENPAYER_JOBS_IN_SERVE=jobs_in_serve,
            OPENPAYER_JOBS_POLL_SECONDS="0.1",
            OPENPAYER_JOBS_HOST_NAME=f"serve-{jobs_in_serve}",
        )
        command = [
            str(Path(sys.executable).parent / "openpayer"),
            "serve",
            "--port",
            str(port),
            "--no-migrate",
            "--workers",
            "1",  # the job runner runs beside the workers, whatever their number: one starts sooner
        ]
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not healthy(port):
                assert time.monotonic() < deadline, "openpayer serve did not start"
                time.sleep(0.2)
            found: set[str] = set()
            settle = time.monotonic() + (1.0 if jobs_in_serve == "false" else 30.0)
            while time.monotonic() < settle:
                with engine.connect() as conn:
                    query = select(job_run).where(job_run.c.host == f"serve-{jobs_in_serve}")
                    found = {row.job for row in conn.execute(query) if row.status == "succeeded"}
                if found >= periodic:
                    return found
                time.sleep(0.2)
            return found
        finally:
            server.terminate()
            server.wait(30)

    assert jobs_run_by_serve("false") == set()
    assert {"oauth.cleanup", "jobs.prune"} <= periodic
    assert jobs_run_by_serve("true") == periodic  # each periodic job's current slot


def test_a_failed_message_is_kept_and_email_retry_sends_it_once_the_relay_accepts(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer, engine: Engine
) -> None:
    monkeypatch.setenv("OPENPAYER_SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}")
    smtp_server.relay.replies = ["554 5.7.1 Relay access denied"]
    refused = cli.invoke(app, ["email", "send-test", "ops@example.org"])
    assert refused.exit_code == 1
    assert "554" in refused.output
    assert "It stays failed." in refused.output

    assert cli.invoke(app, ["email", "retry", "1"]).exit_code == 0
    assert cli.invoke(app, ["email", "retry", "1"]).exit_code == 1  # queued already: nothing to retry
    assert cli.invoke(app, ["worker", "--once"]).exit_code == 0

    assert len(smtp_server.relay.received) == 1
    listing = cli.invoke(app, ["email", "list"])
    row = next(line for line in listing.output.splitlines() if "ops@example.org" in line)
    assert " sent " in row
    assert " 2 " in row  # two attempts: refused, then accepted
