"""Email: templates shipped in the package, every message recorded, delivered by the job runner."""

from openpayer.email.backends import FileOutbox, MailBackend, SmtpRelay, parse_smtp_url
from openpayer.email.service import DELIVER_JOB, EmailService, InvalidRecipient

__all__ = [
    "DELIVER_JOB",
    "EmailService",
    "FileOutbox",
    "InvalidRecipient",
    "MailBackend",
    "SmtpRelay",
    "parse_smtp_url",
]
