"""Breach alerts from a third-party risk monitor (RiskRecon-like): an authenticated webhook, stored raw first.

Signing (docs/security.md, "Breach alerts"): the sender sets `X-Timestamp` (Unix seconds) and
`X-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>` with the shared secret
`OPENPAYER_BREACH_WEBHOOK_SECRET`. A timestamp further than `breach_webhook_tolerance_seconds` (300 s) from
now is refused, so a captured delivery cannot be replayed later; within the window a replay carries an
alert id already taken and changes nothing. The signature is compared in constant time.

Order of work: every delivery is stored raw (`breach_delivery`) in its own transaction before anything
is checked, then authenticated, then parsed; a refused one keeps its row with the reason, for review in
the console. A valid alert is stored once per alert id (`breach_alert`); its organization is matched by
domain. A match raises a `breach_alert` flag on each of the organization's live subscriptions, opens an
incident, and mails the organization's security contact the collaboration invite (once per alert) and the
analysts a notice. An alert no organization matches waits in the console's queue for staff to match.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from openpayer.clock import Clock
from openpayer.db import write_transaction
from openpayer.email import EmailService
from openpayer.incidents.metrics import BREACH_DELIVERIES
from openpayer.incidents.reasons import RiskReason
from openpayer.incidents.risk import RiskRegister
from openpayer.incidents.service import IncidentService
from openpayer.incidents.tables import breach_alert, breach_delivery
from openpayer.portal import incident_directory as directory
from openpayer.portal.errors import Conflict, Invalid, NotFound
from openpayer.portal.staff import Permission, Role, StaffService, record_audit

MAX_BODY = 64 * 1024
SEVERITIES = ("low", "medium", "high", "critical")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_SEVERITY_OF_INCIDENT = {"low": "low", "medium": "medium", "high": "high", "critical": "critical"}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the webhook answers: a status code and a JSON body (`error` and `detail` on a refusal)."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    alert_id: str
    source: str
    organization_name: str
    domain: str
    severity: str
    summary: str
    invite_url: str
    detected_at: str | None
    received_at: int
    status: str  # unmatched | matched | dismissed
    organization_id: int | None
    matched_at: int | None
    matched_by: int | None
    incident_id: int | None


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    received_at: int
    address: str | None
    outcome: str
    detail: str | None
    alert_id: str | None
    body: str  # as received, decoded for display (invalid UTF-8 replaced)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Signature` header value for a delivery (what a sender computes)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


class BreachIntake:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        secret: str | None,
        tolerance: int,
        risk: RiskRegister,
        incidents: IncidentService,
        email: EmailService,
        staff: StaffService,
        public_base_url: str | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.secret = secret
        self.tolerance = tolerance
        self.risk = risk
        self.incidents = incidents
        self.email = email
        self.staff = staff
        self.base = (public_base_url or "").rstrip("/")

    # ---- the webhook ---------------------------------------------------------------------------------
    def receive(self, body: bytes, headers: Mapping[str, str], address: str | None) -> Outcome:
        timestamp = headers.get("x-timestamp")
        signature = headers.get("x-signature")
        with write_transaction(self.engine) as conn:  # raw first, committed whatever follows
            delivery_id = conn.execute(
                breach_delivery.insert()
                .values(
                    received_at=self.clock.now(),
                    address=address[:64] if address else None,
                    signature=signature[:200] if signature else None,
                    timestamp=timestamp[:32] if timestamp else None,
                    body=body[:MAX_BODY],
                    outcome="received",
                )
                .returning(breach_delivery.c.id)
            ).scalar_one()
        if len(body) > MAX_BODY:
            return self._refuse(delivery_id, 413, "too_large", f"the body is over {MAX_BODY} bytes")
        if not self.secret:
            return self._refuse(delivery_id, 503, "not_configured", "the breach-alert webhook has no secret")
        problem = self._authenticate(body, timestamp, signature)
        if problem is not None:
            return self._refuse(delivery_id, 401, "unauthenticated", problem)
        try:
            parsed = parse_alert(body)
        except ValueError as exc:
            return self._refuse(delivery_id, 422, "malformed", str(exc))
        return self._accept(delivery_id, parsed)

    def _authenticate(self, body: bytes, timestamp: str | None, signature: str | None) -> str | None:
        if not timestamp or not signature:
            return "X-Timestamp and X-Signature are required (docs/security.md, Breach alerts)"
        if not timestamp.isdigit() or abs(self.clock.now() - int(timestamp)) > self.tolerance:
            return f"X-Timestamp must be Unix seconds within {self.tolerance} s of now (replay refused)"
        expected = sign(self.secret or "", timestamp, body)
        if not hmac.compare_digest(signature.strip().encode(), expected.encode()):
            return "the signature does not match"
        return None

    def _refuse(self, delivery_id: int, status: int, error: str, detail: str) -> Outcome:
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(breach_delivery)
                .where(breach_delivery.c.id == delivery_id)
                .values(outcome="rejected", detail=f"{error}: {detail}")
            )
        BREACH_DELIVERIES.labels("rejected").inc()
        return Outcome(status, {"error": error, "detail": detail, "delivery": delivery_id})

    def _accept(self, delivery_id: int, alert: dict[str, Any]) -> Outcome:
        now = self.clock.now()
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        with write_transaction(self.engine) as conn:
            inserted = conn.execute(
                dialect.insert(breach_alert)
                .values(**alert, delivery_id=delivery_id, received_at=now, status="unmatched")
                .on_conflict_do_nothing(index_elements=[breach_alert.c.alert_id])
                .returning(breach_alert.c.id)
            ).scalar()
            outcome = "accepted" if inserted is not None else "duplicate"
            conn.execute(
                update(breach_delivery)
                .where(breach_delivery.c.id == delivery_id)
                .values(outcome=outcome, alert_id=alert["alert_id"])
            )
            matches = directory.organizations_by_domain(conn, alert["domain"]) if inserted else []
        BREACH_DELIVERIES.labels(outcome).inc()
        if inserted is None:
            return Outcome(200, {"status": "duplicate", "alert_id": alert["alert_id"]})
        matched = len(matches) == 1  # two organizations on one domain: staff choose
        if matched:
            self._match(int(inserted), matches[0], actor=None, address=None)
        return Outcome(202, {"status": "accepted", "alert_id": alert["alert_id"], "matched": matched})

    # ---- matching ------------------------------------------------------------------------------------
    def match(self, actor: int, alert_pk: int, organization_id: int, address: str | None = None) -> Alert:
        """Staff match a queued alert to an organization (the console's breach queue)."""
        self.staff.require(actor, Permission.INCIDENTS_MANAGE)
        with self.engine.connect() as conn:
            if not directory.organizations(conn, [organization_id]):
                raise NotFound("no such organization")
        self._match(alert_pk, organization_id, actor=actor, address=address)
        return self.get(actor, alert_pk)

    def dismiss(self, actor: int, alert_pk: int, note: str, address: str | None = None) -> None:
        self.staff.require(actor, Permission.INCIDENTS_MANAGE)
        note = note.strip()
        if not note:
            raise Invalid("say why the alert is dismissed", "note")
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                update(breach_alert)
                .where(breach_alert.c.id == alert_pk, breach_alert.c.status == "unmatched")
                .values(status="dismissed", matched_by=actor, matched_at=self.clock.now())
            ).rowcount
            if not done:
                raise Conflict("only an unmatched alert can be dismissed")
            record_audit(
                conn,
                at=self.clock.now(),
                actor=actor,
                action="breach:dismiss",
                target_type="breach_alert",
                target_id=alert_pk,
                before={"status": "unmatched"},
                after={"status": "dismissed", "note": note[:500]},
                address=address,
            )

    def _match(self, alert_pk: int, organization_id: int, *, actor: int | None, address: str | None) -> None:
        now = self.clock.now()
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                update(breach_alert)
                .where(breach_alert.c.id == alert_pk, breach_alert.c.status == "unmatched")
                .values(status="matched", organization_id=organization_id, matched_at=now, matched_by=actor)
            ).rowcount
            if not done:
                raise Conflict("this alert is already matched or dismissed")
            row = conn.execute(select(breach_alert).where(breach_alert.c.id == alert_pk)).one()
            subscriptions = directory.of_organization(conn, organization_id)
            evidence = {
                "alert_id": row.alert_id,
                "source": row.source,
                "severity": row.severity,
                "summary": row.summary,
            }
            for context in subscriptions:
                self.risk.raise_flag(
                    conn,
                    context,
                    RiskReason.BREACH_ALERT,
                    evidence,
                    source=f"breach:{row.alert_id}",
                    notify=False,
                )
            org = directory.organization(conn, organization_id)
            if org is None:
                raise NotFound("no such organization")
            self.email.send(
                conn,
                to=org.security_email,
                template="breach_invite",
                context={
                    "organization": org.name,
                    "source": row.source,
                    "severity": row.severity,
                    "summary": row.summary,
                    "invite_url": row.invite_url,
                },
                cause="incidents.breach-invite",
                idempotency_key=f"breach:{row.alert_id}:invite",
            )
            for analyst in directory.staff_emails(conn, Role.SECURITY_ANALYST):
                self.email.send(
                    conn,
                    to=analyst,
                    template="breach_matched",
                    context={
                        "organization": org.name,
                        "severity": row.severity,
                        "summary": row.summary,
                        "subscriptions": len(subscriptions),
                        "link": f"{self.base}/admin/breach-alerts/{alert_pk}",
                    },
                    cause="incidents.breach-matched",
                    idempotency_key=f"breach:{row.alert_id}:analyst:{analyst}",
                )
            record_audit(
                conn,
                at=now,
                actor=actor,
                action="breach:match",
                target_type="breach_alert",
                target_id=alert_pk,
                before={"status": "unmatched"},
                after={"status": "matched", "organization": organization_id, "by_domain": actor is None},
                address=address,
            )
        created = self.incidents.create(
            None,
            title=f"Breach alert: {row.organization_name} ({row.severity})",
            severity=_SEVERITY_OF_INCIDENT.get(row.severity, "high"),
            summary=row.summary,
            subscriptions=[s.subscription_id for s in subscriptions],
            organizations=[organization_id],
            source=f"breach:{row.alert_id}",
        )
        self.incidents.record(
            created.id,
            "flag",
            f"Breach alert {row.alert_id} flagged {len(subscriptions)} subscriptions",
            {"alert": evidence, "matched_by": actor},
        )
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(breach_alert).where(breach_alert.c.id == alert_pk).values(incident_id=created.id)
            )

    # ---- reading -------------------------------------------------------------------------------------
    def candidates(self, alert: Alert) -> list[directory.OrganizationSummary]:
        """Organizations staff may match an unmatched alert to (same registrable domain, similar name)."""
        with self.engine.connect() as conn:
            return directory.organization_candidates(conn, alert.domain, alert.organization_name)

    def queue(self, actor: int) -> list[Alert]:
        """Alerts waiting for staff to match them, oldest first."""
        self.incidents.can_read(actor)
        return self._alerts(breach_alert.c.status == "unmatched", oldest_first=True)

    def recent(self, actor: int, limit: int = 50) -> list[Alert]:
        self.incidents.can_read(actor)
        return self._alerts(breach_alert.c.status != "unmatched", limit=limit)

    def get(self, actor: int, alert_pk: int) -> Alert:
        self.incidents.can_read(actor)
        found = self._alerts(breach_alert.c.id == alert_pk)
        if not found:
            raise NotFound("no such alert")
        return found[0]

    def rejected(self, actor: int, limit: int = 50) -> list[Delivery]:
        """Refused deliveries, newest first, kept for review."""
        self.incidents.can_read(actor)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(breach_delivery)
                .where(breach_delivery.c.outcome == "rejected")
                .order_by(breach_delivery.c.id.desc())
                .limit(limit)
            ).all()
        return [
            Delivery(
                r.id,
                r.received_at,
                r.address,
                r.outcome,
                r.detail,
                r.alert_id,
                bytes(r.body).decode("utf-8", "replace"),
            )
            for r in rows
        ]

    def _alerts(self, condition: Any, *, oldest_first: bool = False, limit: int = 200) -> list[Alert]:
        order = breach_alert.c.id if oldest_first else breach_alert.c.id.desc()
        with self.engine.connect() as conn:
            rows = conn.execute(select(breach_alert).where(condition).order_by(order).limit(limit)).all()
        return [
            Alert(
                id=r.id,
                alert_id=r.alert_id,
                source=r.source,
                organization_name=r.organization_name,
                domain=r.domain,
                severity=r.severity,
                summary=r.summary,
                invite_url=r.invite_url,
                detected_at=r.detected_at,
                received_at=r.received_at,
                status=r.status,
                organization_id=r.organization_id,
                matched_at=r.matched_at,
                matched_by=r.matched_by,
                incident_id=r.incident_id,
            )
            for r in rows
        ]


def parse_alert(body: bytes) -> dict[str, Any]:
    """The alert's fields as stored, or `ValueError` naming every problem (a 422 that says what to fix)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("the body is not JSON") from exc
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    problems: list[str] = []
    organization = data.get("organization")
    if not isinstance(organization, dict):
        problems.append("organization must be an object with name and domain")
        organization = {}

    def text(value: Any, name: str, limit: int, required: bool = True) -> str | None:
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            problems.append(f"{name} must be a non-empty string of at most {limit} characters")
            return None
        return value.strip()

    alert_id = text(data.get("alert_id"), "alert_id", 128)
    name = text(organization.get("name"), "organization.name", 200)
    domain = text(organization.get("domain"), "organization.domain", 253)
    if domain is not None:
        domain = domain.lower().rstrip(".")
        domain = domain[4:] if domain.startswith("www.") else domain
        if not _DOMAIN.match(domain):
            problems.append("organization.domain must be a host name (example.com)")
    severity = data.get("severity")
    if severity not in SEVERITIES:
        problems.append(f"severity must be one of {', '.join(SEVERITIES)}")
    summary = text(data.get("summary"), "summary", 5000)
    invite = text(data.get("collaboration_invite_url"), "collaboration_invite_url", 1000)
    if invite is not None and (urlsplit(invite).scheme != "https" or not urlsplit(invite).netloc):
        problems.append("collaboration_invite_url must be an https URL")
    source = text(data.get("source", "riskrecon"), "source", 64)
    detected_at = text(data.get("detected_at"), "detected_at", 40, required=False)
    if problems:
        raise ValueError("; ".join(problems))
    return {
        "alert_id": alert_id,
        "source": source,
        "organization_name": name,
        "domain": domain,
        "severity": severity,
        "summary": summary,
        "invite_url": invite,
        "detected_at": detected_at,
    }
