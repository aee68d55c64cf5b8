"""Where mail goes: an SMTP relay (stdlib smtplib) or, by default, a folder of .eml files.

smtplib rather than aiosmtplib: delivery runs on the job runner's thread, one message at a time, so an
async client would only add an event loop to drive; smtplib covers STARTTLS, implicit TLS and AUTH.
Errors are sorted into temporary (retry later: connection refused, 4xx replies, authentication, which an
operator can fix) and permanent (a 5xx refusal of the sender, the recipients or the message).
"""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit


class PermanentDeliveryError(Exception):
    """The relay refused for good (5xx): retrying the same message cannot succeed."""


class MailBackend(Protocol):
    name: str

    def deliver(self, message_id: int, mail_from: str, recipient: str, mime: str) -> None: ...


class FileOutbox:
    """Writes each message to `<folder>/<id>.eml`: a retry overwrites the same file, never adds one."""

    name = "outbox"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def deliver(self, message_id: int, mail_from: str, recipient: str, mime: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"{message_id:08d}.eml"
        partial = target.with_suffix(".eml.partial")
        partial.write_text(mime, encoding="utf-8", newline="")
        os.replace(partial, target)


@dataclass(frozen=True)
class SmtpUrl:
    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None

    @property
    def display(self) -> str:
        """The relay without its credentials, for logs and messages."""
        scheme = "smtps" if self.implicit_tls else "smtp"
        user = f"{self.username}@" if self.username else ""
        tls = "?starttls=true" if self.starttls else ""
        return f"{scheme}://{user}{self.host}:{self.port}{tls}"


def parse_smtp_url(url: str) -> SmtpUrl:
    """smtp://user:pass@host:port[?starttls=true] or smtps://... (implicit TLS, port 465 by default)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("the SMTP URL must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("the SMTP URL names no host")
    query = parse_qs(parts.query)
    starttls = query.get("starttls", ["false"])[-1].lower() in ("1", "true", "yes")
    implicit = parts.scheme == "smtps"
    if implicit and starttls:
        raise ValueError("smtps:// is already TLS; starttls=true applies to smtp:// only")
    try:
        port = parts.port or (465 if implicit else 25)
    except ValueError as exc:
        raise ValueError("the SMTP URL's port is not a number") from exc
    return SmtpUrl(
        host=parts.hostname,
        port=port,
        implicit_tls=implicit,
        starttls=starttls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class SmtpRelay:
    name = "smtp"

    def __init__(
        self, url: SmtpUrl, *, timeout: float = 30.0, tls_context: ssl.SSLContext | None = None
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.tls_context = tls_context or ssl.create_default_context()

    def deliver(self, message_id: int, mail_from: str, recipient: str, mime: str) -> None:
        url = self.url
        client: smtplib.SMTP
        try:
            if url.implicit_tls:
                client = smtplib.SMTP_SSL(url.host, url.port, timeout=self.timeout, context=self.tls_context)
            else:
                client = smtplib.SMTP(url.host, url.port, timeout=self.timeout)
            with client:
                if url.starttls:
                    client.starttls(context=self.tls_context)
                if url.username:
                    client.login(url.username, url.password or "")
                client.sendmail(mail_from, [recipient], mime.encode("utf-8"))
        except smtplib.SMTPAuthenticationError:
            raise  # a wrong password is the operator's to fix; keep the message for a later attempt
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if codes and all(500 <= code < 600 for code in codes):
                raise PermanentDeliveryError(f"the relay refused the recipient: {codes[0]}") from exc
            raise
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                detail = (
                    exc.smtp_error.decode("utf-8", "replace")
                    if isinstance(exc.smtp_error, bytes)
                    else exc.smtp_error
                )
                raise PermanentDeliveryError(
                    f"the relay refused the message: {exc.smtp_code} {detail}"
                ) from exc
            raise
