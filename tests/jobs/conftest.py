"""Fixtures of the job runner and email tests: an adjustable clock, a real SMTP server (aiosmtpd) in the
test process, and a self-signed certificate for its STARTTLS and implicit-TLS variants."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests.live import free_port
from typer.testing import CliRunner

from openpayer.clock import Clock
from openpayer.config import Settings


@dataclass
class Relay:
    """What the SMTP server received, and the replies it gives to the next DATA commands."""

    received: list[Envelope] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)  # e.g. "451 4.3.0 try again later"; then 250
    delay: float = 0.0
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        if self.replies:
            return self.replies.pop(0)
        if self.delay:
            await asyncio.sleep(self.delay)
        self.received.append(envelope)
        return "250 2.0.0 OK"

    def message_ids(self) -> list[str]:
        ids = []
        for envelope in self.received:
            content = envelope.content if isinstance(envelope.content, bytes) else b""
            for line in content.split(b"\r\n"):
                if line.lower().startswith(b"message-id:"):
                    ids.append(line.split(b":", 1)[1].strip().decode())
        return ids


@dataclass
class SmtpServer:
    relay: Relay
    port: int
    controller: Controller


def start_server(relay: Relay, **options: Any) -> SmtpServer:
    port = free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=port, **options)
    controller.start()
    return SmtpServer(relay, port, controller)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = start_server(Relay())
    yield server
    server.controller.stop()


@dataclass(frozen=True)
class Certificate:
    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert_path))


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1, trusted only by the contexts built from it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openpayer test relay")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Certificate(cert_path, key_path)


def password_checker(relay: Relay, username: str, password: str) -> Any:
    def authenticate(
        server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            relay.logins.append(auth_data.login.decode())
            if auth_data.login.decode() == username and auth_data.password.decode() == password:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    return authenticate


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner whose OPENPAYER_* environment points the commands at this test's database."""
    monkeypatch.setenv("OPENPAYER_HOME", str(settings.home))
    monkeypatch.setenv("OPENPAYER_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("OPENPAYER_SECRET_KEY", "test-secret")
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()
