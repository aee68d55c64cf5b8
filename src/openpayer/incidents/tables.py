"""Tables of incident response: at-risk flags, incidents with their links and timeline, breach alerts.

Timestamps are integer seconds since the Unix epoch (UTC). JSON columns are text. A flag, an incident or an
alert refers to the portal's subscriptions and organizations by id (the portal owns them).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, LargeBinary, PrimaryKeyConstraint, String, Table, Text

from openpayer.db import BigId, metadata

# A subscription's reason to be at risk. `open_key` is "<subscription>:<reason>" while the flag is raised and
# NULL once cleared: unique, so one flag per subscription and reason is raised at a time on every database
# (raising again adds evidence to it), and a cleared one can be raised anew.
risk_flag = Table(
    "risk_flag",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("subscription_id", BigInteger, nullable=False),
    Column("env", String(32), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("reason", String(32), nullable=False),  # openpayer.incidents.reasons.RiskReason
    Column("open_key", String(64), nullable=True, unique=True),
    Column("evidence", Text, nullable=False),  # JSON list of the evidence each raise brought
    Column("source", String(128), nullable=False),  # detector name, breach alert id, staff
    Column("raised_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("cleared_at", BigInteger, nullable=True),
    Column("cleared_by", BigInteger, nullable=True),  # staff account id
    Column("clear_note", Text, nullable=True),
    Index("ix_risk_flag_subscription_id", "subscription_id"),
)

incident = Table(
    "incident",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("title", String(200), nullable=False),
    Column("severity", String(16), nullable=False),  # low | medium | high | critical
    Column("status", String(16), nullable=False),  # open | contained | resolved
    Column("owner_account_id", BigInteger, nullable=True),
    Column("source", String(128), nullable=False),  # manual | flag:<id> | breach:<alert id>
    Column("summary", Text, nullable=False),
    Column("created_by", BigInteger, nullable=True),  # NULL: created by the system (a flag or an alert)
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_incident_status", "status"),
)

incident_link = Table(
    "incident_link",
    metadata,
    Column("incident_id", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),  # subscription | organization
    Column("target_id", BigInteger, nullable=False),
    Column("linked_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("incident_id", "kind", "target_id"),
    Index("ix_incident_link_target", "kind", "target_id"),
)

# The timeline: every event, note and action, in order, with who and the state before and after.
incident_event = Table(
    "incident_event",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("incident_id", BigInteger, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("actor_account_id", BigInteger, nullable=True),  # NULL: the system
    Column("kind", String(16), nullable=False),  # created | note | action | status | owner | link | flag
    Column("body", Text, nullable=False),
    Column("data", Text, nullable=True),  # JSON: before/after, flag or alert ids
    Index("ix_incident_event_incident_id", "incident_id"),
)

# Every POST to the breach-alert webhook, stored raw before anything is checked, with what became of it.
breach_delivery = Table(
    "breach_delivery",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("received_at", BigInteger, nullable=False),
    Column("address", String(64), nullable=True),
    Column("signature", String(200), nullable=True),  # the X-Signature header as sent
    Column("timestamp", String(32), nullable=True),  # the X-Timestamp header as sent
    Column("body", LargeBinary, nullable=False),  # at most the webhook's size limit
    Column("outcome", String(16), nullable=False),  # received | accepted | duplicate | rejected
    Column("detail", Text, nullable=True),  # why it was rejected
    Column("alert_id", String(128), nullable=True),
    Index("ix_breach_delivery_outcome", "outcome"),
)

# One row per alert id (the first valid delivery of it).
breach_alert = Table(
    "breach_alert",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("alert_id", String(128), nullable=False, unique=True),
    Column("delivery_id", BigInteger, nullable=False),
    Column("source", String(64), nullable=False),
    Column("organization_name", String(200), nullable=False),
    Column("domain", String(253), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("summary", Text, nullable=False),
    Column("invite_url", String(1000), nullable=False),
    Column("detected_at", String(40), nullable=True),
    Column("received_at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # unmatched | matched | dismissed
    Column("organization_id", BigInteger, nullable=True),
    Column("matched_at", BigInteger, nullable=True),
    Column("matched_by", BigInteger, nullable=True),  # NULL with matched_at: matched by domain
    Column("incident_id", BigInteger, nullable=True),
    Index("ix_breach_alert_status", "status"),
)
