"""What the domains above the portal (the inactivity policy) read and change of it, on their own connection.

The policy decides; the portal owns the tables. Every method takes the caller's connection, so that a policy
step, its record, its mail and what it changes here commit together (or not at all).

- `subscriptions`: every subscription with its application and organization (what a notice names).
- `people`: an organization's accounts (address, role, enabled), and who registered the application, so that
  the policy can write to "the involved developer" and to "other staff at the same organization".
- `remove_subscriptions` / `remove_organization`: the portal side of a removal. Removing an organization
  marks it removed and deletes the sign-in accounts of its people (only those in no other active organization
  and not staff), so that the organization "restarts at sign-up"; its records stay for audit. The console's
  removal of an organization (`staff_actions.StaffActions.remove_organization`) takes the same steps, so a
  removed organization means one thing wherever it was removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from openpayer.accounts.people import PeopleService
from openpayer.portal.models import (
    portal_application,
    portal_membership,
    portal_organization,
    portal_staff,
    portal_subscription,
)
from openpayer.portal.monitoring import MonitoringService


@dataclass(frozen=True, slots=True)
class SubscriptionFacts:
    subscription_id: int
    env: str
    client_id: str
    status: str  # active | suspended | removed
    created_at: int
    application_id: int
    application: str
    application_created_by: int
    support_email: str
    organization_id: int
    organization: str
    organization_status: str
    technical_email: str
    security_email: str


@dataclass(frozen=True, slots=True)
class Person:
    """An account of an organization: `account_id`, its address and its role there (owner | developer)."""

    account_id: int
    email: str
    role: str


class Directory:
    """Reads and the removal steps of the portal, for the inactivity policy."""

    def __init__(self, people: PeopleService, monitoring: MonitoringService) -> None:
        self.people_service = people  # the accounts domain's (addresses; deleting accounts)
        self.monitoring = monitoring  # removed subscriptions' monitoring accounts stop signing in

    def subscriptions(
        self,
        conn: Connection,
        *,
        subscription_id: int | None = None,
        organization_id: int | None = None,
    ) -> list[SubscriptionFacts]:
        s, a, o = portal_subscription, portal_application, portal_organization
        query = (
            select(
                s.c.id,
                s.c.env,
                s.c.client_id,
                s.c.status,
                s.c.created_at,
                a.c.id.label("application_id"),
                a.c.name,
                a.c.created_by,
                a.c.support_email,
                o.c.id.label("organization_id"),
                o.c.legal_name,
                o.c.status.label("organization_status"),
                o.c.technical_contact_email,
                o.c.security_contact_email,
            )
            .select_from(s.join(a, a.c.id == s.c.application_id).join(o, o.c.id == a.c.organization_id))
            .order_by(s.c.id)
        )
        if subscription_id is not None:
            query = query.where(s.c.id == subscription_id)
        if organization_id is not None:
            query = query.where(o.c.id == organization_id)
        return [
            SubscriptionFacts(
                subscription_id=r.id,
                env=r.env,
                client_id=r.client_id,
                status=r.status,
                created_at=r.created_at,
                application_id=r.application_id,
                application=r.name,
                application_created_by=r.created_by,
                support_email=r.support_email,
                organization_id=r.organization_id,
                organization=r.legal_name,
                organization_status=r.organization_status,
                technical_email=r.technical_contact_email,
                security_email=r.security_contact_email,
            )
            for r in conn.execute(query)
        ]

    def people(self, conn: Connection, organization_id: int) -> list[Person]:
        """The organization's enabled accounts, in the order they joined."""
        m = portal_membership
        members = conn.execute(
            select(m.c.account_id, m.c.role)
            .where(m.c.organization_id == organization_id)
            .order_by(m.c.created_at, m.c.account_id)
        ).all()
        accounts = {p.id: p for p in self.people_service.people_in(conn, [r.account_id for r in members])}
        return [
            Person(r.account_id, accounts[r.account_id].email, r.role)
            for r in members
            if r.account_id in accounts and not accounts[r.account_id].disabled
        ]

    def remove_subscriptions(self, conn: Connection, subscription_ids: Iterable[int]) -> None:
        ids = list(subscription_ids)
        if ids:
            conn.execute(
                update(portal_subscription).where(portal_subscription.c.id.in_(ids)).values(status="removed")
            )
            s = portal_subscription
            pairs = conn.execute(select(s.c.application_id, s.c.env).where(s.c.id.in_(ids))).all()
            self.monitoring.retire_in(conn, [(application_id, env) for application_id, env in pairs])

    def remove_organization(self, conn: Connection, organization_id: int, now: int) -> list[Person]:
        """Mark the organization removed and delete its people's sign-in accounts (those in no other active
        organization, and not staff), with their memberships; the accounts deleted."""
        conn.execute(
            update(portal_organization)
            .where(portal_organization.c.id == organization_id)
            .values(status="removed", updated_at=now)
        )
        m, o = portal_membership, portal_organization
        people = self.people(conn, organization_id)
        removed = []
        for person in people:
            elsewhere = conn.execute(
                select(m.c.organization_id)
                .select_from(m.join(o, o.c.id == m.c.organization_id))
                .where(m.c.account_id == person.account_id, o.c.status == "active")
                .limit(1)
            ).first()
            staff = conn.execute(
                select(portal_staff.c.account_id).where(portal_staff.c.account_id == person.account_id)
            ).first()
            if elsewhere is None and staff is None:
                removed.append(person)
        ids = [person.account_id for person in removed]
        if ids:
            conn.execute(m.delete().where(m.c.account_id.in_(ids)))
            self.people_service.delete_in(conn, ids)
        return removed
