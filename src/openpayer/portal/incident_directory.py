"""What incident response (`openpayer.incidents`, above the portal) reads of the portal, in the caller's
connection: a client's subscription with its application and organization, an organization's live
subscriptions, organizations by domain, look-alike organizations for an unmatched breach alert, and the
addresses of the staff holding a role. Read-only; the portal owns the tables (an import contract keeps
incident response off them, as it keeps the inactivity policy off them with `portal.directory`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, func, or_, select

from openpayer.portal.models import (
    portal_application,
    portal_organization,
    portal_staff,
    portal_subscription,
)
from openpayer.portal.staff import Role


@dataclass(frozen=True, slots=True)
class SubscriptionContext:
    subscription_id: int
    env: str
    client_id: str
    status: str  # active | suspended | removed
    application_id: int
    application: str
    organization_id: int
    organization: str
    security_email: str


def _contexts() -> Select[Any]:
    s, a, o = portal_subscription, portal_application, portal_organization
    return (
        select(
            s.c.id,
            s.c.env,
            s.c.client_id,
            s.c.status,
            a.c.id.label("application_id"),
            a.c.name.label("application"),
            o.c.id.label("organization_id"),
            o.c.legal_name,
            o.c.security_contact_email,
        )
        .select_from(s.join(a, a.c.id == s.c.application_id).join(o, o.c.id == a.c.organization_id))
        .order_by(s.c.id)
    )


def _context(row: Any) -> SubscriptionContext:
    return SubscriptionContext(
        subscription_id=row.id,
        env=row.env,
        client_id=row.client_id,
        status=row.status,
        application_id=row.application_id,
        application=row.application,
        organization_id=row.organization_id,
        organization=row.legal_name,
        security_email=row.security_contact_email,
    )


def by_client(conn: Connection, env: str, client_id: str) -> SubscriptionContext | None:
    s = portal_subscription
    row = conn.execute(_contexts().where(s.c.env == env, s.c.client_id == client_id)).first()
    return _context(row) if row is not None else None


def by_ids(conn: Connection, ids: Iterable[int]) -> list[SubscriptionContext]:
    wanted = list(ids)
    if not wanted:
        return []
    rows = conn.execute(_contexts().where(portal_subscription.c.id.in_(wanted))).all()
    return [_context(row) for row in rows]


def of_organization(conn: Connection, organization_id: int) -> list[SubscriptionContext]:
    """The organization's subscriptions that are not removed, of its applications that are not removed."""
    rows = conn.execute(
        _contexts().where(
            portal_organization.c.id == organization_id,
            portal_application.c.status != "removed",
            portal_subscription.c.status != "removed",
        )
    ).all()
    return [_context(row) for row in rows]


def organizations_by_domain(conn: Connection, domain: str) -> list[int]:
    """Active organizations registered with `domain` (lower-case host name), oldest first."""
    o = portal_organization
    rows = conn.execute(
        select(o.c.id).where(o.c.domain == domain, o.c.status == "active").order_by(o.c.id)
    ).scalars()
    return [int(x) for x in rows]


def staff_emails(conn: Connection, role: Role) -> list[str]:
    p = portal_staff
    rows = conn.execute(
        select(p.c.email).where(p.c.role == role.value, p.c.status == "active").order_by(p.c.email)
    ).scalars()
    return list(rows)


def organizations(conn: Connection, ids: Iterable[int]) -> dict[int, str]:
    wanted = list(ids)
    if not wanted:
        return {}
    o = portal_organization
    rows = conn.execute(select(o.c.id, o.c.legal_name).where(o.c.id.in_(wanted))).all()
    return {int(row.id): row.legal_name for row in rows}


@dataclass(frozen=True, slots=True)
class OrganizationSummary:
    id: int
    name: str
    domain: str
    security_email: str


def organization(conn: Connection, organization_id: int) -> OrganizationSummary | None:
    o = portal_organization
    row = conn.execute(
        select(o.c.id, o.c.legal_name, o.c.domain, o.c.security_contact_email).where(
            o.c.id == organization_id
        )
    ).first()
    return (
        OrganizationSummary(row.id, row.legal_name, row.domain, row.security_contact_email) if row else None
    )


def organization_candidates(
    conn: Connection, domain: str, name: str, limit: int = 20
) -> list[OrganizationSummary]:
    """Active organizations an unmatched alert may be about: the same registrable domain (its last two
    labels), or a name that contains the alert's first word."""
    o = portal_organization
    parts = domain.split(".")
    base = ".".join(parts[-2:]) if len(parts) >= 2 else domain
    word = (name.split() or [""])[0]
    condition = or_(o.c.domain == base, o.c.domain.like(f"%.{_escape(base)}", escape="\\"))
    if len(word) >= 3:
        condition = or_(condition, func.lower(o.c.legal_name).like(f"%{_escape(word.lower())}%", escape="\\"))
    rows = conn.execute(
        select(o.c.id, o.c.legal_name, o.c.domain, o.c.security_contact_email)
        .where(o.c.status == "active", condition)
        .order_by(o.c.legal_name)
        .limit(limit)
    ).all()
    return [OrganizationSummary(r.id, r.legal_name, r.domain, r.security_contact_email) for r in rows]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
