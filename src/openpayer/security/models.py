"""The security domain's tables: the access audit log (who, which app, whose data, what, when, outcome)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table

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
