"""Email through the job runner: the outbox by default, a real SMTP relay (aiosmtpd) that refuses and then
accepts, permanent refusals, STARTTLS with authentication, implicit TLS, and idempotent recording."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, select
from tests.jobs.conftest import Certificate, Relay, SmtpServer, password_checker, start_server

from openpayer.app import Services
from openpayer.background import Background, build_background
from openpayer.clock import Clock
from openpayer.config import Settings
from openpayer.db import write_transaction
from openpayer.email import InvalidRecipient, SmtpRelay, parse_smtp_url
from openpayer.email.tables import email_message
from openpayer.jobs.tables import job_run

CONTEXT = {"deployment": "https://payer.example", "sent_at": "now", "recipient": "dev@example.org"}


def send(background: Background, engine: Engine, to: str = "dev@example.org", **kwargs: Any) -> int:
    with write_transaction(engine) as conn:
        return background.email.send(
            conn,
            to=to,
            template="test_message",
            context=kwargs.pop("context", CONTEXT),
            cause="test",
            **kwargs,
        )


def message(engine: Engine, message_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(email_message).where(email_message.c.id == message_id)).one()


def relay_background(settings: Settings, engine: Engine, clock: Clock, url: str, **kwargs: Any) -> Background:
    return build_background(
        settings, engine, clock, backend=SmtpRelay(parse_smtp_url(url), timeout=5, **kwargs)
    )


def test_by_default_a_message_lands_in_the_outbox_with_text_and_html_parts(services: Services) -> None:
    background = services.background
    context = dict(CONTEXT, deployment="<b>payer</b> & co")
    message_id = send(background, services.engine, context=context)
    assert message(services.engine, message_id).status == "queued"  # recorded before any delivery

    assert background.runner.run_due() == 1

    row = message(services.engine, message_id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    assert row.sent_at is not None
    assert row.template == "test_message"
    assert row.cause == "test"
    files = list((Path(services.settings.home) / "outbox").glob("*.eml"))
    assert [f.name for f in files] == [f"{message_id:08d}.eml"]
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert parsed["To"] == "dev@example.org"
    assert parsed["Subject"] == "OpenPayer test message from <b>payer</b> & co"
    assert parsed["Message-ID"] == row.message_id
    text = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    assert "<b>payer</b> & co" in text
    assert "&lt;b&gt;payer&lt;/b&gt; &amp; co" in html
    assert "<b>payer</b>" not in html


def test_a_relay_that_refuses_and_then_accepts_delays_the_message_once_delivered(
    settings: Settings, engine: Engine, clock: Clock, smtp_server: SmtpServer
) -> None:
    background = relay_background(settings, engine, clock, f"smtp://127.0.0.1:{smtp_server.port}")
    smtp_server.relay.replies = ["451 4.3.0 Try again later", "421 4.7.0 Too busy"]
    sent_before = REGISTRY.get_sample_value("openpayer_emails_sent_total", {"backend": "smtp"}) or 0
    message_id = send(background, engine)

    background.runner.run_due()
    row = message(engine, message_id)
    assert (row.status, row.attempts) == ("queued", 1)
    assert "451" in row.last_error
    assert smtp_server.relay.received == []
    clock.advance(30)
    background.runner.run_due()
    row = message(engine, message_id)
    assert (row.status, row.attempts) == ("queued", 2)
    clock.advance(60)
    background.runner.run_due()
    clock.advance(3600)
    background.runner.run_due()  # nothing left to do: a sent message is not sent again

    row = message(engine, message_id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)
    assert smtp_server.relay.message_ids() == [row.message_id]
    envelope = smtp_server.relay.received[0]
    assert envelope.rcpt_tos == ["dev@example.org"]
    assert envelope.mail_from == "openpayer@localhost"
    assert (
        REGISTRY.get_sample_value("openpayer_emails_sent_total", {"backend": "smtp"}) or 0
    ) == sent_before + 1


def test_an_unreachable_relay_keeps_the_message_queued_until_it_comes_back(
    settings: Settings, engine: Engine, clock: Clock
) -> None:
    server = start_server(Relay())
    port = server.port
    server.controller.stop()
    background = relay_background(settings, engine, clock, f"smtp://127.0.0.1:{port}")
    message_id = send(background, engine)
    background.runner.run_due()
    row = message(engine, message_id)
    assert row.status == "queued"
    assert "Connection refused" in row.last_error

    server = start_server(Relay())
    try:
        background = relay_background(settings, engine, clock, f"smtp://127.0.0.1:{server.port}")
        clock.advance(30)
        background.runner.run_due()
        assert message(engine, message_id).status == "sent"
        assert len(server.relay.received) == 1
    finally:
        server.controller.stop()


def test_a_permanent_refusal_fails_the_message_without_retrying(
    settings: Settings, engine: Engine, clock: Clock, smtp_server: SmtpServer
) -> None:
    background = relay_background(settings, engine, clock, f"smtp://127.0.0.1:{smtp_server.port}")
    smtp_server.relay.replies = ["550 5.1.1 No such user"]
    message_id = send(background, engine)
    background.runner.run_due()
    clock.advance(86400)
    background.runner.run_due()

    row = message(engine, message_id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert "550" in row.last_error
    with engine.connect() as conn:
        run = conn.execute(select(job_run).where(job_run.c.job == "email.deliver")).one()
    assert (run.status, run.attempt) == ("failed", 1)


def test_starttls_with_authentication(
    settings: Settings, engine: Engine, clock: Clock, certificate: Certificate
) -> None:
    relay = Relay()
    server = start_server(
        relay,
        tls_context=certificate.server_context(),
        require_starttls=True,
        authenticator=password_checker(relay, "mailer", "s3cret:/@"),
        auth_required=True,
        auth_require_tls=True,
    )
    try:
        url = f"smtp://mailer:s3cret%3A%2F%40@127.0.0.1:{server.port}?starttls=true"
        background = relay_background(settings, engine, clock, url, tls_context=certificate.client_context())
        message_id = send(background, engine)
        background.runner.run_due()
        assert message(engine, message_id).status == "sent"
        assert relay.logins == ["mailer"]
        assert len(relay.received) == 1

        wrong = relay_background(
            settings, engine, clock, url.replace("s3cret", "wrong"), tls_context=certificate.client_context()
        )
        second = send(wrong, engine)
        wrong.runner.run_due()
        row = message(engine, second)
        assert row.status == "queued"
        assert "535" in row.last_error
        assert "wrong" not in row.last_error
    finally:
        server.controller.stop()


def test_implicit_tls(settings: Settings, engine: Engine, clock: Clock, certificate: Certificate) -> None:
    relay = Relay()
    server = start_server(relay, ssl_context=certificate.server_context())
    try:
        background = relay_background(
            settings,
            engine,
            clock,
            f"smtps://127.0.0.1:{server.port}",
            tls_context=certificate.client_context(),
        )
        message_id = send(background, engine)
        background.runner.run_due()
        assert message(engine, message_id).status == "sent"
        assert len(relay.received) == 1
    finally:
        server.controller.stop()


def test_recording_with_an_idempotency_key_twice_records_and_sends_one_message(services: Services) -> None:
    background = services.background
    first = send(background, services.engine, idempotency_key="policy:sub-1:first-notice")
    second = send(background, services.engine, idempotency_key="policy:sub-1:first-notice")
    assert first == second
    assert background.runner.run_due() == 1
    with services.engine.connect() as conn:
        assert len(conn.execute(select(email_message)).all()) == 1


@pytest.mark.parametrize(
    "address",
    ["nobody", "a@b@example.org", "x@example.org\r\nBcc: y@example.org", "Name <x@example.org>", "x@host"],
)
def test_an_address_that_is_not_one_plain_address_is_refused(services: Services, address: str) -> None:
    with pytest.raises(InvalidRecipient):
        send(services.background, services.engine, to=address)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://relay.example:2525", ("relay.example", 2525, False, False, None, None)),
        ("smtps://u%40x:p%2Fw@relay.example", ("relay.example", 465, True, False, "u@x", "p/w")),
        ("smtp://relay.example?starttls=true", ("relay.example", 25, False, True, None, None)),
    ],
)
def test_smtp_urls(url: str, expected: tuple[object, ...]) -> None:
    parsed = parse_smtp_url(url)
    assert (
        parsed.host,
        parsed.port,
        parsed.implicit_tls,
        parsed.starttls,
        parsed.username,
        parsed.password,
    ) == (expected)
    assert "p/w" not in parsed.display
    assert "%2F" not in parsed.display


@pytest.mark.parametrize("url", ["http://relay", "smtp://", "smtps://relay?starttls=true", "smtp://relay:x"])
def test_bad_smtp_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        parse_smtp_url(url)


def test_the_smtp_password_stays_out_of_the_settings_repr_and_a_bad_url_is_refused() -> None:
    from pydantic import ValidationError

    settings = Settings(smtp_url="smtps://mailer:hunter2-secret@relay.example")
    assert "hunter2-secret" not in repr(settings)
    with pytest.raises(ValidationError, match="must start with smtp:// or smtps://"):
        Settings(smtp_url="http://relay.example")
