"""Every message the platform sends, recorded before it is sent (the job runner delivers it afterwards).

`mime` is the whole message as it goes on the wire, rendered once when it is recorded: every retry sends
the same bytes with the same Message-ID. `cause` says what produced it (e.g. `policy.first-notice`);
`idempotency_key`, when the producer gives one, makes recording the same message twice a no-op.
Times are integer seconds since the epoch.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from openpayer.db import metadata

BigId = BigInteger().with_variant(Integer(), "sqlite")

email_message = Table(
    "email_message",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("created_at", BigInteger, nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("mail_from", String(320), nullable=False),
    Column("template", String(100), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("cause", String(200), nullable=False),
    Column("idempotency_key", String(200), nullable=True, unique=True),
    Column("message_id", String(255), nullable=False),  # the Message-ID header
    Column("mime", Text, nullable=False),
    Column("status", String(16), nullable=False),  # queued | sent | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("last_attempt_at", BigInteger, nullable=True),
    Column("sent_at", BigInteger, nullable=True),
    Index("ix_email_message_status_created_at", "status", "created_at"),
    Index("ix_email_message_recipient", "recipient"),
)
