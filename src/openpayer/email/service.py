"""The email service: render a template, record the message, and let the job runner deliver it.

`send` runs inside the caller's transaction (the event that causes the mail and the mail itself are
committed together) and queues an `email.deliver` run for the message. Delivery retries with backoff while
the relay fails temporarily; the message stays `queued` meanwhile and becomes `failed` (kept, with its last
error) when the relay refuses it for good or the attempts run out. A message marked `sent` is never sent
again. The one window for a duplicate is a host dying after the relay accepted and before the database
recorded it; the retry then carries the same Message-ID, which receiving systems use to drop repeats.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateNotFound, select_autoescape
from sqlalchemy import Connection, Engine, select, update

from openpayer.db import read_connection, write_transaction
from openpayer.email import metrics
from openpayer.email.backends import MailBackend, PermanentDeliveryError
from openpayer.email.tables import email_message
from openpayer.jobs import Clock, JobContext, JobQueue, JobRegistry, PermanentError
from openpayer.jobs.queue import insert_ignoring_duplicates

log = logging.getLogger("openpayer.email")

DELIVER_JOB = "email.deliver"


class InvalidRecipient(ValueError):
    pass


def check_address(address: str) -> str:
    """One plain address (no display name, no header folding): what goes in RCPT TO and the To header."""
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if (
        not at
        or not local
        or not domain
        or "@" in local
        or any(c in address for c in '\r\n\t <>,;"()[]\\')
        or ("." not in domain and domain != "localhost")
    ):
        raise InvalidRecipient(f"not an email address: {address!r}")
    return address


class EmailService:
    def __init__(
        self,
        engine: Engine,
        queue: JobQueue,
        backend: MailBackend,
        clock: Clock,
        *,
        mail_from: str,
        max_attempts: int = 12,
    ) -> None:
        self.engine = engine
        self.queue = queue
        self.backend = backend
        self.clock = clock
        self.mail_from = mail_from
        self.max_attempts = max_attempts
        self.templates = Environment(
            loader=PackageLoader("openpayer.email", "templates"),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    def register(self, registry: JobRegistry) -> None:
        registry.task(
            DELIVER_JOB,
            self.deliver,
            description="Delivers one recorded email message",
            max_attempts=self.max_attempts,
            backoff=30,
            backoff_cap=3600,
            lease=300,
        )

    # -- recording --------------------------------------------------------------------------------------

    def render(self, template: str, context: Mapping[str, Any]) -> tuple[str, str, str | None]:
        """(subject, text, html or None) of a packaged template: NAME.subject.txt, NAME.txt, NAME.html."""
        subject = self.templates.get_template(f"{template}.subject.txt").render(context)
        subject = " ".join(subject.split())  # one line, whatever the template did
        text = self.templates.get_template(f"{template}.txt").render(context)
        try:
            html: str | None = self.templates.get_template(f"{template}.html").render(context)
        except TemplateNotFound:
            html = None
        return subject, text, html

    def send(
        self,
        conn: Connection,
        *,
        to: str,
        template: str,
        context: Mapping[str, Any],
        cause: str,
        idempotency_key: str | None = None,
    ) -> int:
        """Record a message and queue its delivery, in the caller's transaction; returns its id.

        With an `idempotency_key` a second call records nothing new and returns the first message's id.
        """
        recipient = check_address(to)
        subject, text, html = self.render(template, context)
        now = self.clock.now()
        message = EmailMessage(policy=SMTP)
        message["From"] = self.mail_from
        message["To"] = recipient
        message["Subject"] = subject
        message["Date"] = formatdate(now, usegmt=True)
        domain = parseaddr(self.mail_from)[1].rpartition("@")[2] or "localhost"
        message["Message-ID"] = make_msgid(idstring="openpayer", domain=domain)
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
        values = {
            "created_at": now,
            "recipient": recipient,
            "mail_from": parseaddr(self.mail_from)[1],
            "template": template,
            "subject": subject[:300],
            "cause": cause[:200],
            "idempotency_key": idempotency_key,
            "message_id": message["Message-ID"],
            "mime": message.as_string(),
            "status": "queued",
            "attempts": 0,
        }
        if idempotency_key is None:
            inserted = conn.execute(email_message.insert().values(**values).returning(email_message.c.id))
            message_id = int(inserted.scalar_one())
        else:
            insert_ignoring_duplicates(conn, email_message, values)
            query = select(email_message.c.id).where(email_message.c.idempotency_key == idempotency_key)
            message_id = int(conn.execute(query).scalar_one())
        self.delivery_run(conn, message_id)
        return message_id

    def delivery_run(self, conn: Connection, message_id: int) -> int:
        """The id of the job run that delivers a message (queued with the message; idempotent)."""
        return self.queue.enqueue(conn, DELIVER_JOB, {"message_id": message_id}, key=f"message-{message_id}")

    def retry(self, conn: Connection, message_id: int) -> int | None:
        """Queue a failed message again (after the operator fixed the relay or the address book); returns
        the new delivery run's id, or None when the message is not failed (queued ones are already due)."""
        now = self.clock.now()
        changed = conn.execute(
            update(email_message)
            .where(email_message.c.id == message_id, email_message.c.status == "failed")
            .values(status="queued")
        ).rowcount
        if not changed:
            return None
        return self.queue.enqueue(
            conn, DELIVER_JOB, {"message_id": message_id}, key=f"message-{message_id}-retry-{now}"
        )

    # -- delivering (the job) ---------------------------------------------------------------------------

    def deliver(self, context: JobContext) -> str:
        message_id = int(context.payload["message_id"])
        with read_connection(self.engine) as conn:
            row = conn.execute(select(email_message).where(email_message.c.id == message_id)).first()
        if row is None:
            raise PermanentError(f"email message {message_id} does not exist")
        if row.status == "sent":
            return f"message {message_id} was already sent"
        try:
            self.backend.deliver(message_id, row.mail_from, row.recipient, row.mime)
        except Exception as exc:
            permanent = isinstance(exc, PermanentDeliveryError)
            final = permanent or context.last_attempt
            error = f"{type(exc).__name__}: {exc}"[:2000]
            self._record(message_id, "failed" if final else "queued", error)
            metrics.EMAILS_FAILED.labels(backend=self.backend.name, final=str(final).lower()).inc()
            if permanent:
                raise PermanentError(error) from exc
            raise
        self._record(message_id, "sent", None)
        metrics.EMAILS_SENT.labels(backend=self.backend.name).inc()
        return f"message {message_id} sent by {self.backend.name}"

    def _record(self, message_id: int, status: str, error: str | None) -> None:
        now = self.clock.now()
        values: dict[str, Any] = {
            "status": status,
            "attempts": email_message.c.attempts + 1,
            "last_attempt_at": now,
            "last_error": error,
        }
        if status == "sent":
            values["sent_at"] = now
        with write_transaction(self.engine) as conn:
            conn.execute(update(email_message).where(email_message.c.id == message_id).values(**values))
