"""The security domain's tables: the access audit log, the security event stream and its detections."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from openpayer.db import BigId, metadata

audit_event = Table(
    "audit_event",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),  # microseconds
    Column("env", String(32), nullable=False),
    Column("event", String(64), nullable=False),
    Column("client_id", String(64), nullable=True),
    Column("member_id", BigInteger, nullable=True),
    Column("patient_id", String(64), nullable=True),
    Column("interaction", String(32), nullable=True),
    Column("resource_type", String(64), nullable=True),
    Column("resource_id", String(64), nullable=True),
    Column("status", Integer, nullable=False),
    Index("ix_audit_event_env_at", "env", "at"),
    Index("ix_audit_event_patient_id", "patient_id"),
)

# The security event stream (openpayer.security.events): sign-ins, client authentication, token reuse,
# introspection, revocation, refused FHIR requests and rate-limit hits (staff actions have their own trail,
# `portal_staff_audit`, with before and after). `account` is a keyed
# hash (HMAC), never a username; `env` is NULL for the portal and console (no environment).
security_event = Table(
    "security_event",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),  # microseconds
    Column("env", String(32), nullable=True),
    Column("kind", String(32), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("address", String(64), nullable=True),
    Column("client_id", String(64), nullable=True),
    Column("account", String(64), nullable=True),
    Column("status", Integer, nullable=True),
    Column("detail", String(128), nullable=True),
    Index("ix_security_event_kind_at", "kind", "at"),
    Index("ix_security_event_address_at", "address", "at"),
    Index("ix_security_event_client_id_at", "client_id", "at"),
    Index("ix_security_event_at", "at"),
)

# What the detectors found (openpayer.security.detectors), and the findings handed to a `RiskSink`
# (kind `app_flagged`) by the default sink. `dedupe` keeps one row per (kind, subject, window) whichever
# host found it first.
security_detection = Table(
    "security_detection",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),  # microseconds
    Column("env", String(32), nullable=True),
    Column("kind", String(32), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("client_id", String(64), nullable=True),  # the app the traffic came through, when attributed
    Column("window_start", BigInteger, nullable=False),
    Column("window_end", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("evidence", Text, nullable=False),  # JSON: event ids, counts, thresholds
    Column("dedupe", String(255), nullable=False, unique=True),
    Index("ix_security_detection_at", "at"),
    Index("ix_security_detection_client_id", "env", "client_id"),
)
