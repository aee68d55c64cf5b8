"""Prometheus counters of email delivery, on prometheus_client's default registry (served by /metrics)."""

from __future__ import annotations

from prometheus_client import Counter

EMAILS_SENT = Counter(
    "openpayer_emails_sent", "Email messages handed to the relay or the outbox.", ["backend"]
)
EMAILS_FAILED = Counter(
    "openpayer_emails_failed",
    "Failed delivery attempts; final=true when the message will not be tried again.",
    ["backend", "final"],
)
