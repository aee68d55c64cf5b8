"""Mail from the portal until the email domain delivers it: each message rendered and written as an `.eml`
file in `OPENPAYER_HOME/outbox/` (so `make run` works offline), and kept in memory for tests to read.

It has the shape of the email domain's service (`send(conn, to=, template=, context=, cause=)`), so the
composition root can hand the portal either. The templates are `mail/NAME.subject.txt` and `mail/NAME.txt`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy import Connection


@dataclass(frozen=True, slots=True)
class SentMail:
    to: str
    subject: str
    text: str
    template: str
    cause: str


class Outbox:
    def __init__(self, folder: Path | None, mail_from: str = "portal@openpayer.invalid") -> None:
        self.folder = folder
        self.mail_from = mail_from
        self.sent: list[SentMail] = []
        self._templates = Environment(
            loader=PackageLoader("openpayer.portal", "mail"),
            autoescape=False,  # noqa: S701 - plain-text mail, never HTML
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

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
        subject = " ".join(self._templates.get_template(f"{template}.subject.txt").render(context).split())
        text = self._templates.get_template(f"{template}.txt").render(context)
        self.sent.append(SentMail(to, subject, text, template, cause))
        if self.folder is not None:
            message = EmailMessage(policy=SMTP)
            message["From"] = self.mail_from
            message["To"] = to
            message["Subject"] = subject
            message.set_content(text)
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / f"{template}-{secrets.token_hex(6)}.eml").write_bytes(message.as_bytes())
        return len(self.sent)
