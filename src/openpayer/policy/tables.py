"""The policy's tables: each subscription's current state, and every transition with its evidence.

Timestamps are integer seconds since the Unix epoch; `entered_on` and `paused_until` are local dates of the
plan's time zone (ISO `YYYY-MM-DD`), because the policy's intervals are counted in the plan's days.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from openpayer.db import BigId, metadata

policy_state = Table(
    "policy_state",
    metadata,
    Column("subscription_id", BigInteger, primary_key=True),
    # active | first_notice | second_notice | escalated | removed | paused
    Column("state", String(16), nullable=False),
    Column(
        "cycle", Integer, nullable=False
    ),  # +1 at each response: a notice key is (subscription, stage, cycle)
    Column("entered_at", BigInteger, nullable=False),
    Column("entered_on", String(10), nullable=False),
    Column("responded_at", BigInteger, nullable=True),  # the window restarts from the last response
    Column("paused_until", String(10), nullable=True),
    Column("pause_reason", Text, nullable=True),
)

policy_transition = Table(
    "policy_transition",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("subscription_id", BigInteger, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("on_date", String(10), nullable=False),  # the policy day it happened on (the sweep's --as-of)
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("cycle", Integer, nullable=False),
    Column("last_authorized_at", BigInteger, nullable=True),  # the evidence the step was decided on
    Column("last_call_at", BigInteger, nullable=True),
    Column("reason", Text, nullable=False),
    Column("actor", String(200), nullable=False),  # "sweep", "staff:<name>", "developer link", ...
    Column("emails", Text, nullable=False),  # JSON list of email_message ids sent with it
    Index("ix_policy_transition_subscription_id", "subscription_id"),
)
