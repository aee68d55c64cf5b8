"""CIRT incidents: a record with severity, status (open, contained, resolved), owner, linked subscriptions
and organizations, and a timeline of events, notes and actions; created by hand or from an at-risk flag.

Every change is a permission check, the change, a timeline event and a staff audit row (who, what, when,
before and after) in one transaction. The actions on a subscription (suspend, restore, rotate its
credentials) are the portal's staff actions (`ApplicationService.set_status`, `staff_rotate`: they check
`subscriptions:suspend` / `subscriptions:rotate` and audit themselves); the incident records them on its
timeline with the state before and after. Reading needs `incidents:manage` or `audit:read`; everything
else `incidents:manage`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from openpayer.clock import Clock
from openpayer.db import write_transaction
from openpayer.incidents.risk import RiskRegister
from openpayer.incidents.tables import incident, incident_event, incident_link
from openpayer.portal import incident_directory as directory
from openpayer.portal.applications import ApplicationService
from openpayer.portal.errors import Conflict, Forbidden, Invalid, NotFound
from openpayer.portal.incident_directory import SubscriptionContext
from openpayer.portal.staff import Permission, StaffMember, StaffService, record_audit

SEVERITIES = ("low", "medium", "high", "critical")
STATUSES = ("open", "contained", "resolved")
ACTIONS = ("suspend", "restore", "rotate")
LINK_KINDS = ("subscription", "organization")


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    at: int
    actor_account_id: int | None
    kind: str
    body: str
    data: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    title: str
    severity: str
    status: str
    owner_account_id: int | None
    source: str
    summary: str
    created_by: int | None
    created_at: int
    updated_at: int
    subscriptions: tuple[int, ...] = ()
    organizations: tuple[int, ...] = ()


class IncidentService:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        staff: StaffService,
        applications: ApplicationService,
        risk: RiskRegister,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.staff = staff
        self.applications = applications
        self.risk = risk

    # ---- permissions ---------------------------------------------------------------------------------
    def can_read(self, actor: int) -> StaffMember:
        member = self.staff.get(actor)
        if member is None or not (
            member.can(Permission.INCIDENTS_MANAGE) or member.can(Permission.AUDIT_READ)
        ):
            raise Forbidden("this needs the incidents:manage or audit:read permission")
        return member

    # ---- creating ------------------------------------------------------------------------------------
    def create(
        self,
        actor: int | None,
        *,
        title: str,
        severity: str,
        summary: str = "",
        subscriptions: Iterable[int] = (),
        organizations: Iterable[int] = (),
        source: str = "manual",
        address: str | None = None,
    ) -> Incident:
        """A new open incident. `actor=None` is the system (a breach alert matched by domain)."""
        if actor is not None:
            self.staff.require(actor, Permission.INCIDENTS_MANAGE)
        title, summary = _text(title, "title", 200), summary.strip()[:10_000]
        if severity not in SEVERITIES:
            raise Invalid(f"the severity is one of {', '.join(SEVERITIES)}", "severity")
        now = self.clock.now()
        with write_transaction(self.engine) as conn:
            subs = directory.by_ids(conn, set(subscriptions))
            orgs = set(organizations) | {s.organization_id for s in subs}
            if len(subs) != len(set(subscriptions)) or len(directory.organizations(conn, orgs)) != len(orgs):
                raise NotFound("a linked subscription or organization does not exist")
            incident_id = conn.execute(
                incident.insert()
                .values(
                    title=title,
                    severity=severity,
                    status="open",
                    owner_account_id=actor,
                    source=source[:128],
                    summary=summary,
                    created_by=actor,
                    created_at=now,
                    updated_at=now,
                )
                .returning(incident.c.id)
            ).scalar_one()
            for sub in subs:
                _link(conn, incident_id, "subscription", sub.subscription_id, now)
            for org in orgs:
                _link(conn, incident_id, "organization", org, now)
            after = {"title": title, "severity": severity, "status": "open", "source": source}
            self._event(conn, incident_id, actor, "created", f"Incident opened ({source})", {"after": after})
            record_audit(
                conn,
                at=now,
                actor=actor,
                action="incident:create",
                target_type="incident",
                target_id=incident_id,
                after={**after, "subscriptions": sorted(s.subscription_id for s in subs)},
                address=address,
            )
        return self.get(actor, incident_id) if actor is not None else self._load(incident_id)

    def from_flag(self, actor: int, flag_id: int, severity: str, address: str | None = None) -> Incident:
        """An incident about a raised flag's subscription, with the flag's evidence on its timeline."""
        flag = self.risk.get(flag_id)
        with self.engine.connect() as conn:
            found = directory.by_ids(conn, [flag.subscription_id])
        if not found:
            raise NotFound("the flagged subscription no longer exists")
        context = found[0]
        created = self.create(
            actor,
            title=f"{context.application} ({context.env}): {flag.reason_text}",
            severity=severity,
            summary=f"From at-risk flag {flag.id}: {flag.summary}",
            subscriptions=[flag.subscription_id],
            source=f"flag:{flag.id}",
            address=address,
        )
        with write_transaction(self.engine) as conn:
            self._event(
                conn,
                created.id,
                actor,
                "flag",
                f"At-risk flag {flag.id}: {flag.summary}",
                {"flag": asdict(flag)},
            )
        return created

    # ---- changing ------------------------------------------------------------------------------------
    def note(self, actor: int, incident_id: int, body: str, address: str | None = None) -> None:
        self.staff.require(actor, Permission.INCIDENTS_MANAGE)
        body = _text(body, "note", 10_000)
        with write_transaction(self.engine) as conn:
            self._touch(conn, incident_id)
            self._event(conn, incident_id, actor, "note", body, None)
            record_audit(
                conn,
                at=self.clock.now(),
                actor=actor,
                action="incident:note",
                target_type="incident",
                target_id=incident_id,
                after={"note": body[:200]},
                address=address,
            )

    def change(
        self, actor: int, incident_id: int, field: str, value: str, address: str | None = None
    ) -> None:
        """Set the status, severity or owner (a staff account id, or empty for nobody)."""
        self.staff.require(actor, Permission.INCIDENTS_MANAGE)
        new: object
        if (field == "status" and value in STATUSES) or (field == "severity" and value in SEVERITIES):
            new = value
        elif field == "owner_account_id":
            new = int(value) if value.strip().isdigit() else None
            owner = self.staff.get(new) if new is not None else None
            if new is not None and (owner is None or not owner.can(Permission.INCIDENTS_MANAGE)):
                raise Invalid("the owner must be staff who can manage incidents", "owner")
        else:
            raise Invalid(f"{value!r} is not a valid {field.replace('_account_id', '')}", field)
        with write_transaction(self.engine) as conn:
            current = self._touch(conn, incident_id)
            before = getattr(current, field)
            if before == new:
                return
            conn.execute(update(incident).where(incident.c.id == incident_id).values({field: new}))
            label = field.replace("_account_id", "")
            change = {"before": {label: before}, "after": {label: new}}
            kind = "owner" if label == "owner" else "status" if label == "status" else "severity"
            self._event(conn, incident_id, actor, kind, f"{label}: {before} → {new}", change)
            record_audit(
                conn,
                at=self.clock.now(),
                actor=actor,
                action=f"incident:{label}",
                target_type="incident",
                target_id=incident_id,
                before=change["before"],
                after=change["after"],
                address=address,
            )

    def link(
        self, actor: int, incident_id: int, kind: str, target_id: int, address: str | None = None
    ) -> None:
        self.staff.require(actor, Permission.INCIDENTS_MANAGE)
        if kind not in LINK_KINDS:
            raise Invalid("link a subscription or an organization", "kind")
        now = self.clock.now()
        with write_transaction(self.engine) as conn:
            self._touch(conn, incident_id)
            if kind == "subscription":
                found = directory.by_ids(conn, [target_id])
                if not found:
                    raise NotFound("no such subscription")
                _link(conn, incident_id, "organization", found[0].organization_id, now)
            elif not directory.organizations(conn, [target_id]):
                raise NotFound("no such organization")
            if _link(conn, incident_id, kind, target_id, now):
                self._event(conn, incident_id, actor, "link", f"Linked {kind} {target_id}", None)
                record_audit(
                    conn,
                    at=now,
                    actor=actor,
                    action="incident:link",
                    target_type="incident",
                    target_id=incident_id,
                    after={kind: target_id},
                    address=address,
                )

    def act(
        self,
        actor: int,
        incident_id: int,
        action: str,
        subscription_id: int,
        reason: str,
        address: str | None = None,
    ) -> None:
        """Suspend, restore or rotate the credentials of a subscription linked to the incident."""
        self.staff.require(actor, Permission.INCIDENTS_MANAGE)
        if action not in ACTIONS:
            raise Invalid(f"the action is one of {', '.join(ACTIONS)}", "action")
        current = self._load(incident_id)
        if subscription_id not in current.subscriptions:
            raise Conflict("link the subscription to the incident first")
        before = self.applications.subscription_by_id(subscription_id)
        reason = _text(reason, "reason", 1000)
        if action == "rotate":
            self.applications.staff_rotate(actor, subscription_id, reason=reason, address=address)
        else:
            status = "suspended" if action == "suspend" else "active"
            if before.status == status:
                raise Conflict(f"the subscription is already {status}")
            self.applications.set_status(actor, subscription_id, status, reason=reason, address=address)
        after = self.applications.subscription_by_id(subscription_id)
        data = {
            "subscription": subscription_id,
            "client_id": after.client_id,
            "env": after.env,
            "reason": reason,
            "before": {
                "status": before.status,
                "credentials_revealed": before.credentials_revealed_at is not None,
            },
            "after": {
                "status": after.status,
                "credentials_revealed": after.credentials_revealed_at is not None,
            },
        }
        with write_transaction(self.engine) as conn:
            self._touch(conn, incident_id)
            verb = {"suspend": "Suspended", "restore": "Restored", "rotate": "Rotated the credentials of"}
            self._event(
                conn,
                incident_id,
                actor,
                "action",
                f"{verb[action]} subscription {subscription_id} ({after.env}): {reason}",
                data,
            )
            record_audit(
                conn,
                at=self.clock.now(),
                actor=actor,
                action=f"incident:{action}",
                target_type="incident",
                target_id=incident_id,
                before=data["before"],  # type: ignore[arg-type]
                after={**data["after"], "subscription": subscription_id},  # type: ignore[dict-item]
                address=address,
            )

    def record(self, incident_id: int, kind: str, body: str, data: Mapping[str, Any] | None = None) -> None:
        """A system event on the timeline (a breach alert, a flag raised again)."""
        with write_transaction(self.engine) as conn:
            self._touch(conn, incident_id)
            self._event(conn, incident_id, None, kind, body, dict(data) if data else None)

    # ---- reading -------------------------------------------------------------------------------------
    def get(self, actor: int, incident_id: int) -> Incident:
        self.can_read(actor)
        return self._load(incident_id)

    def all(self, actor: int, status: str | None = None, limit: int = 200) -> list[Incident]:
        self.can_read(actor)
        query = select(incident.c.id).order_by(incident.c.id.desc()).limit(limit)
        if status:
            query = query.where(incident.c.status == status)
        with self.engine.connect() as conn:
            ids = list(conn.execute(query).scalars())
        return [self._load(i) for i in ids]

    def timeline(self, actor: int, incident_id: int) -> list[Event]:
        self.can_read(actor)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(incident_event)
                .where(incident_event.c.incident_id == incident_id)
                .order_by(incident_event.c.id)
            ).all()
        return [
            Event(r.id, r.at, r.actor_account_id, r.kind, r.body, json.loads(r.data) if r.data else None)
            for r in rows
        ]

    def export(self, actor: int, incident_id: int, address: str | None = None) -> dict[str, Any]:
        """The incident for the plan's records: the record, its links and the whole timeline."""
        found = self.get(actor, incident_id)
        with write_transaction(self.engine) as conn:  # who took the plan's records out, and when
            record_audit(
                conn,
                at=self.clock.now(),
                actor=actor,
                action="incident:export",
                target_type="incident",
                target_id=incident_id,
                address=address,
            )
        subs, orgs = self.linked(found)
        return {
            "resourceType": "openpayer.incident",
            "exported_at": self.clock.now(),
            "incident": {
                k: v for k, v in asdict(found).items() if k not in ("subscriptions", "organizations")
            },
            "subscriptions": [asdict(s) for s in subs],
            "organizations": [{"id": i, "name": n} for i, n in sorted(orgs.items())],
            "flags": [
                asdict(f) for fl in self.risk.of_subscriptions(found.subscriptions).values() for f in fl
            ],
            "timeline": [asdict(e) for e in self.timeline(actor, incident_id)],
        }

    def linked(self, found: Incident) -> tuple[list[SubscriptionContext], dict[int, str]]:
        """The incident's subscriptions (with application and organization) and organizations by id."""
        with self.engine.connect() as conn:
            return directory.by_ids(conn, found.subscriptions), directory.organizations(
                conn, found.organizations
            )

    def of_subscription(self, subscription_id: int) -> list[int]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(incident_link.c.incident_id).where(
                        incident_link.c.kind == "subscription", incident_link.c.target_id == subscription_id
                    )
                ).scalars()
            )

    # ---- internals -----------------------------------------------------------------------------------
    def _load(self, incident_id: int) -> Incident:
        with self.engine.connect() as conn:
            row = conn.execute(select(incident).where(incident.c.id == incident_id)).first()
            if row is None:
                raise NotFound("no such incident")
            links = conn.execute(
                select(incident_link.c.kind, incident_link.c.target_id)
                .where(incident_link.c.incident_id == incident_id)
                .order_by(incident_link.c.target_id)
            ).all()
        return Incident(
            id=row.id,
            title=row.title,
            severity=row.severity,
            status=row.status,
            owner_account_id=row.owner_account_id,
            source=row.source,
            summary=row.summary,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
            subscriptions=tuple(t for k, t in links if k == "subscription"),
            organizations=tuple(t for k, t in links if k == "organization"),
        )

    def _touch(self, conn: Connection, incident_id: int) -> Any:
        row = conn.execute(select(incident).where(incident.c.id == incident_id)).first()
        if row is None:
            raise NotFound("no such incident")
        conn.execute(update(incident).where(incident.c.id == incident_id).values(updated_at=self.clock.now()))
        return row

    def _event(
        self,
        conn: Connection,
        incident_id: int,
        actor: int | None,
        kind: str,
        body: str,
        data: Mapping[str, Any] | None,
    ) -> None:
        conn.execute(
            incident_event.insert().values(
                incident_id=incident_id,
                at=self.clock.now(),
                actor_account_id=actor,
                kind=kind,
                body=body,
                data=json.dumps(data, default=str, sort_keys=True) if data is not None else None,
            )
        )


def _link(conn: Connection, incident_id: int, kind: str, target_id: int, now: int) -> bool:
    """Link once; whether the link is new."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    done = conn.execute(
        dialect.insert(incident_link)
        .values(incident_id=incident_id, kind=kind, target_id=target_id, linked_at=now)
        .on_conflict_do_nothing()
        .returning(incident_link.c.incident_id)
    ).first()
    return done is not None


def _text(value: str, field: str, max_length: int) -> str:
    value = (value or "").strip()
    if not value:
        raise Invalid(f"the {field} is required", field)
    if len(value) > max_length:
        raise Invalid(f"the {field} is at most {max_length} characters", field)
    return value
