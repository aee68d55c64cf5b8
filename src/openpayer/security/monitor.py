"""Security monitoring: the event stream, the throttle, the detectors and attribution, as one service.

- Domains above (accounts, oauth, portal) call `record` (and `throttle`), never the tables.
- `flush` (run by the audit writer with the other buffers) writes the pending events, then scans: each
  detector runs over its window, a new detection is stored once (whichever host finds it first) and counted
  in `/metrics`, and when its traffic came through an app (the client id of the authorize request or of the
  token) the app is handed to the `RiskSink` with the evidence. Anonymous traffic flags nobody.
- `under_attack(env, client_id)`: a credential-stuffing detection through that app is in its window; sign-in
  then refuses breached-list passwords through that app without checking them (`detect_breached_defense`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import Counter
from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from openpayer.clock import Clock
from openpayer.db import write_transaction
from openpayer.security.detectors import MICROS, DetectionKind, Found, Stuffing, rules, run_rule, run_stuffing
from openpayer.security.events import EventKind, Outcome, SecurityEvents
from openpayer.security.models import security_detection
from openpayer.security.risk import RiskSink
from openpayer.security.throttle import Decision, Throttle

log = logging.getLogger("openpayer.security")

DETECTIONS = Counter("openpayer_security_detections", "Attacks detected, by kind.", ["kind"])
MITIGATIONS = Counter(
    "openpayer_security_mitigations",
    "Attempts refused by throttling or an active defense, by kind.",
    ["kind"],
)
FINDINGS = Counter("openpayer_security_findings", "Apps flagged through the RiskSink, by reason.", ["reason"])

_DEFENSE_REFRESH = 5.0  # seconds between reads of active defenses when no scan ran here


@dataclass(frozen=True, slots=True)
class Detection:
    id: int
    at: int
    env: str | None
    kind: str
    subject: str
    client_id: str | None
    window_start: int
    window_end: int
    count: int
    evidence: dict[str, Any]


class SecurityMonitor:
    def __init__(
        self,
        settings: Any,
        engine: Engine,
        clock: Clock,
        events: SecurityEvents,
        throttle: Throttle,
        sink: RiskSink,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.events = events
        self.throttle = throttle
        self.sink = sink  # the composition root may rebind it (a higher domain's risk state)
        self.rules = rules(settings)
        self.stuffing = Stuffing.from_settings(settings)
        self._scan_lock = threading.Lock()
        self._defended: dict[tuple[str | None, str | None], int] = {}  # (env, client) -> until (micros)
        self._defenses_read = 0.0
        self._scanned = 0  # `events.signals` at the last scan

    # ---- recording -------------------------------------------------------------------------------------
    def account(self, realm: str, username: str) -> str:
        return self.events.account(realm, username)

    def record(self, kind: EventKind, outcome: Outcome, **fields: Any) -> None:
        self.events.record(kind, outcome, **fields)

    def mitigated(self, kind: str, decision: Decision, **fields: Any) -> None:
        """A throttled attempt: counted, and recorded as a rate-limit event naming the limit."""
        MITIGATIONS.labels(kind).inc()
        self.events.record(
            EventKind.RATE_LIMITED, Outcome.THROTTLED, status=429, detail=f"{kind} {decision.limit}", **fields
        )

    # ---- the audit writer's buffer protocol --------------------------------------------------------
    def due(self) -> bool:
        return self.events.due() or self.events.signals != self._scanned

    def flush(self) -> None:
        """Write the pending events, then scan when an event a detector counts was written since the last
        scan (a reader's query may have written it). Detections only grow with such events: a window that
        slides forward with nothing new in it can only count fewer."""
        self.events.flush()
        signals = self.events.signals
        if signals != self._scanned:
            self.scan()
            self._scanned = signals

    # ---- detection ---------------------------------------------------------------------------------
    def scan(self, now: int | None = None) -> list[Detection]:
        """Run every detector over its window ending `now` (microseconds); store, count and attribute
        what is new. Returns the detections stored by this call."""
        now = now if now is not None else self.clock.now_micros()
        stored: list[Detection] = []
        with self._scan_lock:
            with self.engine.connect() as conn:
                found = [f for rule in self.rules for f in run_rule(conn, rule, now)]
                found += run_stuffing(conn, self.stuffing, now)
            for item in found:
                detection = self._store(item, now)
                if detection is not None:
                    stored.append(detection)
                    DETECTIONS.labels(item.kind).inc()
                    log.warning(
                        "detected %s: env=%s %s (%d events)", item.kind, item.env, item.subject, item.count
                    )
                    self._attribute(item, detection)
            self._read_defenses(now)
        return stored

    def _store(self, item: Found, now: int) -> Detection | None:
        t = security_detection
        with write_transaction(self.engine) as conn:
            recent = conn.execute(
                select(t.c.id).where(
                    t.c.kind == str(item.kind),
                    t.c.env.is_(None) if item.env is None else t.c.env == item.env,
                    t.c.subject == item.subject,
                    t.c.window_end >= now - item.window * MICROS,
                )
            ).first()
            if recent is not None:
                return None  # already detected in this window (here or on another host)
            bucket = now // (item.window * MICROS)
            key = f"{item.kind}|{item.env}|{item.subject}|{bucket}"
            attributed = self._attributed(item)
            evidence = {
                "event_ids": item.event_ids,
                "counts": {
                    "events": item.count,
                    "by_client": {str(k) if k is not None else "-": v for k, v in item.clients.items()},
                    **item.facts,
                },
                "window": {"start": item.window_start, "end": item.window_end, "seconds": item.window},
            }
            row = {
                "at": now,
                "env": item.env,
                "kind": str(item.kind),
                "subject": item.subject,
                "client_id": attributed,
                "window_start": item.window_start,
                "window_end": item.window_end,
                "count": item.count,
                "evidence": orjson.dumps(evidence).decode(),
                "dedupe": hashlib.sha256(key.encode()).hexdigest(),
            }
            new_id = _insert(conn, row)
        if new_id is None:
            return None
        return Detection(
            new_id,
            now,
            item.env,
            str(item.kind),
            item.subject,
            attributed,
            item.window_start,
            item.window_end,
            item.count,
            evidence,
        )

    def _attributed(self, item: Found) -> str | None:
        """The app that carried the traffic: one client id holding at least the configured share of it."""
        if not item.attributable:
            return None
        total = sum(item.clients.values())
        share = self.settings.detect_attribution_share
        best = max(
            ((c, n) for c, n in item.clients.items() if c is not None), key=lambda x: x[1], default=None
        )
        if best is None or total == 0 or best[1] / total < share:
            return None
        return best[0]

    def _attribute(self, item: Found, detection: Detection) -> None:
        if detection.client_id is None or detection.env is None:
            return  # anonymous traffic: mitigated by address, recorded, nobody flagged
        evidence = {
            "detection_id": detection.id,
            "kind": detection.kind,
            "subject": detection.subject,
            **detection.evidence,
        }
        try:
            self.sink.flag(detection.env, detection.client_id, detection.kind, evidence)
        except Exception:
            log.exception("the risk sink failed for detection %d", detection.id)
            return
        FINDINGS.labels(detection.kind).inc()

    # ---- active defenses -----------------------------------------------------------------------------
    def _read_defenses(self, now: int) -> None:
        t = security_detection
        since = now - self.stuffing.window * MICROS
        kinds = (str(DetectionKind.CREDENTIAL_STUFFING), str(DetectionKind.BREACHED_PASSWORDS))
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.env, t.c.client_id, t.c.window_end).where(
                    t.c.kind.in_(kinds), t.c.window_end >= since
                )
            ).all()
        defended: dict[tuple[str | None, str | None], int] = {}
        for env, client_id, end in rows:
            until = int(end) + self.stuffing.window * MICROS
            defended[(env, client_id)] = max(until, defended.get((env, client_id), 0))
        self._defended = defended
        self._defenses_read = time.monotonic()

    def under_attack(self, env: str | None, client_id: str | None) -> bool:
        """A credential-stuffing detection through this app (or this anonymous sign-in) is in its window."""
        if not self.settings.detect_breached_defense:
            return False
        now = self.clock.now_micros()
        if time.monotonic() - self._defenses_read > _DEFENSE_REFRESH:
            try:
                self._read_defenses(now)
            except Exception:  # the database is unreachable: no defense, sign-in goes on as before
                log.warning("security: active defenses could not be read")
        return self._defended.get((env, client_id), 0) >= now

    # ---- reading -----------------------------------------------------------------------------------
    def detections(
        self,
        *,
        kinds: Sequence[str] = (),
        env: str | None = None,
        client_id: str | None = None,
        since: int | None = None,
        limit: int = 1000,
    ) -> list[Detection]:
        """Stored detections (and findings of the default sink), newest first, after a flush and scan."""
        self.flush()
        t = security_detection
        query = select(t).order_by(t.c.id.desc()).limit(limit)
        if kinds:
            query = query.where(t.c.kind.in_([str(k) for k in kinds]))
        if env is not None:
            query = query.where(t.c.env == env)
        if client_id is not None:
            query = query.where(t.c.client_id == client_id)
        if since is not None:
            query = query.where(t.c.at >= since)
        with self.engine.connect() as conn:
            return [_detection(row) for row in conn.execute(query)]


def _detection(row: Any) -> Detection:
    values = dict(row._mapping)
    values.pop("dedupe", None)
    values["evidence"] = orjson.loads(values["evidence"])
    return Detection(**values)


def _insert(conn: Connection, row: dict[str, Any]) -> int | None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    t = security_detection
    stmt = dialect.insert(t).values(**row).on_conflict_do_nothing().returning(t.c.id)
    found = conn.execute(stmt).scalar_one_or_none()
    return int(found) if found is not None else None
