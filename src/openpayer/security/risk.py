"""Attribution: attack traffic that came through an app is handed to a `RiskSink` as a finding.

Why a Protocol: the security domain sits below the portal, which owns subscriptions and their risk state;
the composition root (`bootstrap.py`) binds the sink. Until a higher domain provides one, `RecordingSink`
records each finding as a detection of kind `app_flagged`, so nothing is lost.

The evidence handed over (JSON-serialisable):
`{"detection_id": int, "kind": str, "subject": str, "event_ids": [int, ...], "counts": {...},
  "window": {"start": micros, "end": micros}}`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any, Protocol

import orjson
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite

from openpayer.clock import Clock
from openpayer.db import write_transaction
from openpayer.security.models import security_detection

log = logging.getLogger("openpayer.security")
APP_FLAGGED = "app_flagged"


class RiskSink(Protocol):
    """Receives "malicious activity through this app" findings (env, the app's client id, why, evidence)."""

    def flag(self, env: str, client_id: str, reason: str, evidence: Mapping[str, Any]) -> None: ...


class RecordingSink:
    """The default sink: the finding becomes a detection row (`kind = app_flagged`, `client_id` set),
    once per (env, app, reason, originating detection)."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def flag(self, env: str, client_id: str, reason: str, evidence: Mapping[str, Any]) -> None:
        window = evidence.get("window") or {}
        now = self.clock.now_micros()
        key = f"{APP_FLAGGED}|{env}|{client_id}|{reason}|{evidence.get('detection_id')}"
        row = {
            "at": now,
            "env": env,
            "kind": APP_FLAGGED,
            "subject": f"client={client_id} reason={reason}"[:200],
            "client_id": client_id,
            "window_start": int(window.get("start", now)),
            "window_end": int(window.get("end", now)),
            "count": len(evidence.get("event_ids") or ()),
            "evidence": orjson.dumps({"reason": reason, **evidence}).decode(),
            "dedupe": hashlib.sha256(key.encode()).hexdigest(),
        }
        with write_transaction(self.engine) as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            conn.execute(dialect.insert(security_detection).values(**row).on_conflict_do_nothing())
        log.warning("app flagged at risk: env=%s client_id=%s reason=%s", env, client_id, reason)
