"""Staff actions the console adds to those of `applications.py` (suspend, restore and rotate a subscription):
removing a subscription or a whole organization, the same actions on clients registered from the command
line, and creating a staff account with a temporary password.

Each is one call: the permission check, the change, and its `portal_staff_audit` row (who, what, when, from
where, before and after; never a secret) in one transaction. OAuth clients change only through the oauth
domain's `ClientStore`. An *operator-registered* client (`openpayer clients register`) has no organization and
no subscription; it is addressed by (environment, client id); its audit target is `client` `env/client_id`.

Removing an organization means what it means when the inactivity policy does it (docs/policy.md, "Removal"):
the portal's side goes through `directory.Directory` (the methods the policy calls), the OAuth side through
`ClientStore.set_status_in` and `TokenStore.revoke_client`, all in one transaction with the audit row.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, select, update

from openpayer.accounts.people import PeopleService
from openpayer.db import write_transaction
from openpayer.oauth.clients import ClientStore
from openpayer.oauth.tokens import TokenStore
from openpayer.portal import validation
from openpayer.portal.applications import ApplicationService
from openpayer.portal.directory import Directory
from openpayer.portal.errors import Conflict, NotFound
from openpayer.portal.interfaces import Clock, Mailer
from openpayer.portal.models import portal_application, portal_organization, portal_subscription
from openpayer.portal.monitoring import MonitoringService
from openpayer.portal.staff import Permission, StaffMember, StaffService, parse_role, record_audit


class StaffActions:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        staff: StaffService,
        applications: ApplicationService,
        people: PeopleService,
        clients: ClientStore,
        monitoring: MonitoringService,
        tokens: TokenStore,
        directory: Directory,
        mailer: Mailer,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.staff = staff
        self.applications = applications
        self.people = people
        self.clients = clients
        self.monitoring = monitoring
        self.tokens = tokens  # a removed organization's tokens are revoked (the oauth domain's store)
        self.directory = directory  # the removal steps the inactivity policy uses too
        self.mailer = mailer  # the removal notice, recorded with the removal

    # ---- subscriptions -----------------------------------------------------------------------------
    def remove_subscription(
        self, actor: int, subscription_id: int, *, reason: str, address: str | None = None
    ) -> None:
        """Remove a subscription for good: its OAuth client is removed with it, and its tokens and consent
        grants revoked (as the inactivity policy and `remove_organization` do); the records stay. The
        developer would need a new production request to come back."""
        self.staff.require(actor, Permission.ORGANIZATIONS_MANAGE)
        reason = validation.text(reason, "reason", max_length=1000)
        subscription = self.applications.subscription_by_id(subscription_id)
        if subscription.status == "removed":
            raise Conflict("this subscription is already removed")
        with write_transaction(self.engine) as conn:
            self.clients.set_status_in(conn, subscription.env, subscription.client_id, "removed")
            self.tokens.revoke_client(conn, subscription.env, subscription.client_id)
            conn.execute(
                update(portal_subscription)
                .where(portal_subscription.c.id == subscription_id)
                .values(status="removed")
            )
            self.monitoring.retire_in(conn, [(subscription.application_id, subscription.env)])
            record_audit(
                conn,
                at=self.clock.now(),
                actor=actor,
                action="subscription:remove",
                target_type="subscription",
                target_id=subscription_id,
                before={"status": subscription.status},
                after={"status": "removed", "reason": reason},
                address=address,
            )

    # ---- organizations -----------------------------------------------------------------------------
    def remove_organization(
        self, actor: int, organization_id: int, *, reason: str, address: str | None = None
    ) -> None:
        """Remove an organization as the inactivity policy does: every subscription not yet removed is
        removed with its OAuth client (its tokens and consent grants revoked), the organization is marked
        removed, its people and contacts are sent a notice, and its people's sign-in accounts are deleted
        unless they are in another active organization or are staff. Nothing else is deleted; the records
        stay for audit."""
        self.staff.require(actor, Permission.ORGANIZATIONS_MANAGE)
        reason = validation.text(reason, "reason", max_length=1000)
        o = portal_organization
        with write_transaction(self.engine) as conn:
            # Read under the write lock (SQLite) or the row's lock (PostgreSQL): a second removal racing this
            # one waits, then finds it removed.
            organization = conn.execute(
                select(o.c.status, o.c.legal_name, o.c.technical_contact_email, o.c.security_contact_email)
                .where(o.c.id == organization_id)
                .with_for_update()
            ).first()
            if organization is None:
                raise NotFound("no such organization")
            status = organization.status
            if status == "removed":
                raise Conflict("this organization is already removed")
            targets = [
                s
                for s in self.directory.subscriptions(conn, organization_id=organization_id)
                if s.status != "removed"
            ]
            self.directory.remove_subscriptions(conn, [s.subscription_id for s in targets])
            for target in targets:
                self.clients.set_status_in(conn, target.env, target.client_id, "removed")
                self.tokens.revoke_client(conn, target.env, target.client_id)
            now = self.clock.now()
            contacts = [organization.technical_contact_email, organization.security_contact_email]
            notified = self._notify_removal(conn, organization_id, organization.legal_name, contacts)
            deleted = self.directory.remove_organization(conn, organization_id, now)
            record_audit(
                conn,
                at=now,
                actor=actor,
                action="organization:remove",
                target_type="organization",
                target_id=organization_id,
                before={"status": status, "subscriptions": [s.subscription_id for s in targets]},
                after={
                    "status": "removed",
                    "reason": reason,
                    "accounts_deleted": [p.account_id for p in deleted],
                    "notified": notified,
                },
                address=address,
            )

    def _notify_removal(
        self, conn: Connection, organization_id: int, legal_name: str, contacts: list[str]
    ) -> list[str]:
        """The removal notice (not the staff's reason, which stays in the audit log) to the organization's
        people and its registered contacts, as the inactivity policy's removal notice goes to the whole
        organization; recorded before the accounts are deleted. The addresses written to."""
        people = [p.email for p in self.directory.people(conn, organization_id)]
        addresses = list({a.lower(): a for a in [*people, *contacts] if a}.values())
        names = conn.execute(
            select(portal_application.c.name)
            .where(portal_application.c.organization_id == organization_id)
            .order_by(portal_application.c.name)
        ).scalars()
        context = {"organization": legal_name, "applications": ", ".join(names)}
        for address in addresses:
            self.mailer.send(
                conn,
                to=address,
                template="portal_organization_removed",
                context=context,
                cause="portal.organization_removed",
                idempotency_key=f"organization-removed:{organization_id}:{address.lower()}",
            )
        return addresses

    # ---- clients registered from the command line --------------------------------------------------
    def _operator_client(self, env: str, client_id: str) -> str:
        """The client's status; `NotFound` for a subscription's client (act on the subscription instead)."""
        client = self.clients.get(env, client_id)
        if client is None or self.applications.subscription_by_client(env, client_id) is not None:
            raise NotFound("no such operator-registered client")
        return client.status

    def set_client_status(
        self,
        actor: int,
        env: str,
        client_id: str,
        status: str,
        *,
        reason: str,
        address: str | None = None,
    ) -> None:
        """Suspend (`suspended`) or restore (`active`) an operator-registered client."""
        self.staff.require(actor, Permission.SUBSCRIPTIONS_SUSPEND)
        if status not in ("active", "suspended"):
            raise Conflict("the status is active or suspended")
        reason = validation.text(reason, "reason", max_length=1000)
        before = self._operator_client(env, client_id)
        if before == "removed":
            raise Conflict("a removed client cannot change")
        with write_transaction(self.engine) as conn:
            self.clients.set_status_in(conn, env, client_id, status)
            record_audit(
                conn,
                at=self.clock.now(),
                actor=actor,
                action="client:suspend" if status == "suspended" else "client:restore",
                target_type="client",
                target_id=f"{env}/{client_id}",
                before={"status": before},
                after={"status": status, "reason": reason},
                address=address,
            )

    def rotate_client_secret(
        self, actor: int, env: str, client_id: str, *, reason: str, address: str | None = None
    ) -> str:
        """A new secret for an operator-registered client, returned to be shown once (there is no developer
        to reveal it to); the old one stops at once."""
        self.staff.require(actor, Permission.SUBSCRIPTIONS_ROTATE)
        reason = validation.text(reason, "reason", max_length=1000)
        status = self._operator_client(env, client_id)
        client = self.clients.get(env, client_id)
        if client is None or client.auth_method != "client_secret":
            raise Conflict("only a confidential client with a secret has a secret to rotate")
        if status == "removed":
            raise Conflict("a removed client cannot change")
        secret = self.clients.rotate_secret(env, client_id, 0)
        with write_transaction(self.engine) as conn:
            record_audit(
                conn,
                at=self.clock.now(),
                actor=actor,
                action="client:rotate",
                target_type="client",
                target_id=f"{env}/{client_id}",
                before={"secret": "previous"},
                after={"secret": "new, shown once to the actor", "reason": reason},
                address=address,
            )
        return secret

    def remove_client(
        self, actor: int, env: str, client_id: str, *, reason: str, address: str | None = None
    ) -> None:
        self.staff.require(actor, Permission.ORGANIZATIONS_MANAGE)
        reason = validation.text(reason, "reason", max_length=1000)
        before = self._operator_client(env, client_id)
        if before == "removed":
            raise Conflict("this client is already removed")
        with write_transaction(self.engine) as conn:
            self.clients.set_status_in(conn, env, client_id, "removed")
            record_audit(
                conn,
                at=self.clock.now(),
                actor=actor,
                action="client:remove",
                target_type="client",
                target_id=f"{env}/{client_id}",
                before={"status": before},
                after={"status": "removed", "reason": reason},
                address=address,
            )

    # ---- staff accounts ----------------------------------------------------------------------------
    def create_staff(
        self, actor: int | None, *, email: str, role: str, address: str | None = None
    ) -> tuple[StaffMember, str | None]:
        """Give an account a staff role, creating the account when the address has none: then a random
        temporary password is returned, to be shown once, and the address is taken as verified (the admin or
        operator vouches for it). The person must set up TOTP at their first sign-in. `actor=None` is the
        command line; from the console the actor needs `staff:manage` (checked before anything is created)."""
        if actor is not None:
            self.staff.require(actor, Permission.STAFF_MANAGE)
        parse_role(role)  # before an account is created for nothing
        password = None
        person = self.people.by_email(email)
        if person is None:
            password = self.people.temporary_password()
            person = self.people.create(email, password)
            self.people.mark_verified(person.id)
        member = self.staff.create(
            actor, account_id=person.id, email=person.email, role=role, address=address
        )
        return member, password
