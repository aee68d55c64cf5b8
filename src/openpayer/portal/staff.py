"""Staff roles and permissions as data, the permission check, and the audit trail of every staff action.

Permissions are `resource:action` strings. A role is a fixed set of them (below); a staff member holds one
role. Every staff action goes through `StaffService.require` (the role is read from the database on each call,
so a role change or a disabled account takes effect on the next request) and writes one `portal_staff_audit`
row in the same transaction as the change it records: who, what, when, from where, and the changed fields
before and after (never a secret). The console and the command line share these calls.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError

from openpayer.db import write_transaction
from openpayer.portal import validation
from openpayer.portal.errors import Conflict, Forbidden, Invalid, NotFound
from openpayer.portal.interfaces import Clock
from openpayer.portal.models import portal_staff, portal_staff_audit


class Permission(StrEnum):
    APPS_READ = "apps:read"  # organizations, applications, subscriptions and requests, read-only
    APPS_REVIEW = "apps:review"  # approve, reject, ask for changes
    SUBSCRIPTIONS_SUSPEND = "subscriptions:suspend"  # suspend and restore
    SUBSCRIPTIONS_ROTATE = "subscriptions:rotate"  # rotate a subscription's credentials
    ORGANIZATIONS_MANAGE = "organizations:manage"  # edit or remove organizations and applications
    INCIDENTS_MANAGE = "incidents:manage"  # incident response (security monitoring)
    AUDIT_READ = "audit:read"
    STAFF_MANAGE = "staff:manage"  # create staff, change roles, disable
    TERMS_PUBLISH = "terms:publish"  # publish new terms of service and questionnaire versions
    POLICY_MANAGE = "policy:manage"  # the inactivity policy: pause a subscription, record a response
    REPORTS_READ = "reports:read"  # the CMS usage report (aggregate counts, no member data)


class Role(StrEnum):
    ADMIN = "admin"
    APPSEC_REVIEWER = "appsec_reviewer"
    SECURITY_ANALYST = "security_analyst"
    SUPPORT = "support"
    AUDITOR = "auditor"


ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.APPSEC_REVIEWER: frozenset({Permission.APPS_READ, Permission.APPS_REVIEW}),
    Role.SECURITY_ANALYST: frozenset(
        {
            Permission.APPS_READ,
            Permission.SUBSCRIPTIONS_SUSPEND,
            Permission.SUBSCRIPTIONS_ROTATE,
            Permission.INCIDENTS_MANAGE,
            Permission.AUDIT_READ,
        }
    ),
    Role.SUPPORT: frozenset({Permission.APPS_READ, Permission.POLICY_MANAGE}),
    Role.AUDITOR: frozenset(
        {Permission.APPS_READ, Permission.AUDIT_READ, Permission.REPORTS_READ}
    ),  # read-only
}

ROLE_DESCRIPTIONS: Mapping[Role, str] = {
    Role.ADMIN: "Everything, including staff accounts and terms of service",
    Role.APPSEC_REVIEWER: "Reviews production requests: approve, reject, ask for changes",
    Role.SECURITY_ANALYST: "Incident response: suspend, restore, rotate credentials; reads the audit log",
    Role.SUPPORT: "Reads organizations, applications and subscriptions to help developers; records their "
    "answers to inactivity notices and pauses the policy",
    Role.AUDITOR: "Reads everything, including the audit log and the CMS report; changes nothing",
}


@dataclass(frozen=True, slots=True)
class StaffMember:
    account_id: int
    email: str
    role: Role
    status: str

    @property
    def permissions(self) -> frozenset[Permission]:
        return ROLE_PERMISSIONS[self.role] if self.status == "active" else frozenset()

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: int
    actor_account_id: int | None
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    address: str | None


def record_audit(
    conn: Connection,
    *,
    at: int,
    actor: int | None,
    action: str,
    target_type: str,
    target_id: object,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    address: str | None = None,
) -> None:
    """One audit row, written on the caller's connection so that it commits or rolls back with the change."""
    conn.execute(
        portal_staff_audit.insert().values(
            at=at,
            actor_account_id=actor,
            action=action,
            target_type=target_type,
            target_id=str(target_id),
            before=json.dumps(dict(before), sort_keys=True) if before is not None else None,
            after=json.dumps(dict(after), sort_keys=True) if after is not None else None,
            address=address[:64] if address else None,
        )
    )


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError as exc:
        raise Invalid(f"unknown role {value!r}; roles: {', '.join(r.value for r in Role)}", "role") from exc


class StaffService:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def get(self, account_id: int) -> StaffMember | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(portal_staff).where(portal_staff.c.account_id == account_id)).first()
        return _member(row) if row is not None else None

    def require(self, account_id: int | None, permission: Permission) -> StaffMember:
        """The active staff member holding `permission`, or `Forbidden` (also for non-staff accounts)."""
        member = self.get(account_id) if account_id is not None else None
        if member is None or not member.can(permission):
            raise Forbidden(f"this needs the {permission.value} permission")
        return member

    def create(
        self,
        actor: int | None,
        *,
        account_id: int,
        email: str,
        role: str,
        address: str | None = None,
    ) -> StaffMember:
        """Make an account staff. `actor=None` is the command line (`openpayer staff create`), which
        bootstraps the first admin; from the console the actor needs `staff:manage`."""
        if actor is not None:
            self.require(actor, Permission.STAFF_MANAGE)
        parsed = parse_role(role)
        address_email = validation.email(email, "email").lower()
        now = self.clock.now()
        values = {
            "account_id": account_id,
            "email": address_email,
            "role": parsed.value,
            "status": "active",
            "created_at": now,
            "created_by": actor,
        }
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(portal_staff.insert().values(**values))
                record_audit(
                    conn,
                    at=now,
                    actor=actor,
                    action="staff:create",
                    target_type="staff",
                    target_id=account_id,
                    after={"email": address_email, "role": parsed.value, "status": "active"},
                    address=address,
                )
        except IntegrityError as exc:
            raise Conflict(f"{address_email} is already a staff member") from exc
        return StaffMember(account_id, address_email, parsed, "active")

    def set_role(self, actor: int | None, account_id: int, role: str, address: str | None = None) -> None:
        parsed = parse_role(role)
        self._update(actor, account_id, {"role": parsed.value}, "staff:role", address)

    def set_status(self, actor: int | None, account_id: int, status: str, address: str | None = None) -> None:
        if status not in ("active", "disabled"):
            raise Invalid("status is active or disabled", "status")
        self._update(actor, account_id, {"status": status}, "staff:status", address)

    def _update(
        self, actor: int | None, account_id: int, changes: dict[str, str], action: str, address: str | None
    ) -> None:
        if actor is not None:
            self.require(actor, Permission.STAFF_MANAGE)
            if actor == account_id:
                raise Forbidden("staff cannot change their own role or status")
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(portal_staff).where(portal_staff.c.account_id == account_id)).first()
            if row is None:
                raise NotFound("no such staff member")
            before = {key: getattr(row, key) for key in changes}
            conn.execute(
                portal_staff.update().where(portal_staff.c.account_id == account_id).values(**changes)
            )
            record_audit(
                conn,
                at=self.clock.now(),
                actor=actor,
                action=action,
                target_type="staff",
                target_id=account_id,
                before=before,
                after=changes,
                address=address,
            )

    def all(self, actor: int) -> list[StaffMember]:
        self.require(actor, Permission.STAFF_MANAGE)
        with self.engine.connect() as conn:
            rows = conn.execute(select(portal_staff).order_by(portal_staff.c.email)).all()
        return [_member(row) for row in rows]

    def audit_trail(
        self,
        actor: int,
        *,
        action: str | None = None,
        target_type: str | None = None,
        target_id: str | None = None,
        actor_account_id: int | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Staff actions, newest first, filtered in the query (so a limit never hides a match)."""
        self.require(actor, Permission.AUDIT_READ)
        query = select(portal_staff_audit).order_by(portal_staff_audit.c.id.desc()).limit(max(1, limit))
        if action:
            query = query.where(portal_staff_audit.c.action == action)
        if target_type:
            query = query.where(portal_staff_audit.c.target_type == target_type)
        if target_id:
            query = query.where(portal_staff_audit.c.target_id == target_id)
        if actor_account_id is not None:
            query = query.where(portal_staff_audit.c.actor_account_id == actor_account_id)
        if since is not None:
            query = query.where(portal_staff_audit.c.at >= since)
        if until is not None:
            query = query.where(portal_staff_audit.c.at < until)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            AuditEntry(
                id=row.id,
                at=row.at,
                actor_account_id=row.actor_account_id,
                action=row.action,
                target_type=row.target_type,
                target_id=row.target_id,
                before=json.loads(row.before) if row.before else None,
                after=json.loads(row.after) if row.after else None,
                address=row.address,
            )
            for row in rows
        ]


def _member(row: Any) -> StaffMember:
    return StaffMember(row.account_id, row.email, Role(row.role), row.status)
