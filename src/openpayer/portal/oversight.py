"""What staff read in the console: organizations, applications with their subscriptions, operator-registered
clients, and people, each with status, contacts, scopes and last activity per environment.

Every call needs `apps:read` (checked here, not only by the pages). The portal's own tables are read here;
OAuth clients come from the oauth domain's `ClientStore` and activity (last successful SMART authorization,
last API call, per environment and client) from its activity log, through the `ActivityReader` seam — the
same record the inactivity policy reads. Clients registered with `openpayer clients register` have no
subscription: they are listed as *operator-registered* applications, per environment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, or_, select

from openpayer.accounts.people import PeopleService, Person
from openpayer.oauth.clients import Client, ClientStore
from openpayer.portal.applications import Application, ApplicationService, Subscription
from openpayer.portal.errors import NotFound
from openpayer.portal.interfaces import ActivityReader, CallCounter, Seen
from openpayer.portal.models import (
    portal_application,
    portal_membership,
    portal_organization,
    portal_subscription,
)
from openpayer.portal.organizations import Organization, OrganizationService
from openpayer.portal.staff import Permission, StaffMember, StaffService


@dataclass(frozen=True, slots=True)
class Activity:
    last_authorized_at: int | None
    last_call_at: int | None


NEVER = Activity(None, None)


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    subscription: Subscription
    client_status: str | None  # the OAuth client's own status (None: the client is gone)
    activity: Activity


@dataclass(frozen=True, slots=True)
class ApplicationView:
    application: Application
    organization: Organization
    subscriptions: list[SubscriptionView]


@dataclass(frozen=True, slots=True)
class OperatorClient:
    """A client registered from the command line (no organization, no subscription)."""

    client: Client
    activity: Activity


@dataclass(frozen=True, slots=True)
class MemberView:
    account_id: int
    email: str
    role: str


@dataclass(frozen=True, slots=True)
class OrganizationView:
    organization: Organization
    people: list[MemberView]
    applications: list[Application]


@dataclass(frozen=True, slots=True)
class PersonView:
    person: Person
    last_sign_in_at: int | None
    staff: StaffMember | None
    organizations: list[tuple[Organization, str]]


@dataclass(frozen=True, slots=True)
class SandboxRecord:
    """What a reviewer asks of an application before production: has it used the sandbox?"""

    subscription: Subscription | None
    activity: Activity
    successful_calls: int

    @property
    def completed_smart_flow(self) -> bool:
        return self.activity.last_authorized_at is not None

    @property
    def called_api(self) -> bool:
        return self.successful_calls > 0 or self.activity.last_call_at is not None


class Oversight:
    def __init__(
        self,
        engine: Engine,
        staff: StaffService,
        organizations: OrganizationService,
        applications: ApplicationService,
        people: PeopleService,
        clients: ClientStore,
        activity: ActivityReader,
        calls: CallCounter,
        environments: Sequence[str],
    ) -> None:
        self.engine = engine
        self.staff = staff
        self.organizations = organizations
        self.applications = applications
        self.people = people
        self.clients = clients
        self.activity = activity
        self.calls = calls
        self.environments = tuple(environments)

    def _seen(self) -> Mapping[tuple[str, str], Seen]:
        return self.activity.last_seen()

    @staticmethod
    def _activity(seen: Mapping[tuple[str, str], Seen], env: str, client_id: str) -> Activity:
        found = seen.get((env, client_id))
        return Activity(found.last_authorized_at, found.last_call_at) if found else NEVER

    # ---- organizations -----------------------------------------------------------------------------
    def find_organizations(self, actor: int, query: str = "", limit: int = 200) -> list[Organization]:
        """Organizations whose legal name or domain contains `query` (case-insensitive)."""
        self.staff.require(actor, Permission.APPS_READ)
        t = portal_organization
        statement = select(t.c.id).order_by(t.c.legal_name).limit(limit)
        if query.strip():
            pattern = f"%{_escape_like(query.strip())}%"
            statement = statement.where(
                or_(t.c.legal_name.ilike(pattern, escape="\\"), t.c.domain.ilike(pattern, escape="\\"))
            )
        with self.engine.connect() as conn:
            ids = conn.execute(statement).scalars().all()
        return [self.organizations.get(int(i)) for i in ids]

    def organization(self, actor: int, organization_id: int) -> OrganizationView:
        self.staff.require(actor, Permission.APPS_READ)
        organization = self.organizations.get(organization_id)
        people = []
        for membership in self.organizations.members_of(organization_id):
            person = self.people.get(membership.account_id)
            email = person.email if person else f"account {membership.account_id} (deleted)"
            people.append(MemberView(membership.account_id, email, membership.role.value))
        with self.engine.connect() as conn:
            ids = conn.execute(
                select(portal_application.c.id)
                .where(portal_application.c.organization_id == organization_id)
                .order_by(portal_application.c.name)
            ).scalars()
            application_ids = [int(i) for i in ids]
        applications = [self.applications.get(i) for i in application_ids]
        return OrganizationView(organization, people, applications)

    # ---- applications and subscriptions ------------------------------------------------------------
    def find_applications(self, actor: int, query: str = "") -> list[Application]:
        return self.applications.all_for_staff(actor, query=query)

    def application(self, actor: int, application_id: int) -> ApplicationView:
        self.staff.require(actor, Permission.APPS_READ)
        application = self.applications.get(application_id)
        seen = self._seen()
        views = [self._subscription_view(s, seen) for s in self.applications.subscriptions(application_id)]
        return ApplicationView(application, self.organizations.get(application.organization_id), views)

    def subscription(self, actor: int, subscription_id: int) -> tuple[SubscriptionView, ApplicationView]:
        view = self.application(actor, self.applications.subscription_by_id(subscription_id).application_id)
        found = next(s for s in view.subscriptions if s.subscription.id == subscription_id)
        return found, view

    def _subscription_view(
        self, subscription: Subscription, seen: Mapping[tuple[str, str], Seen]
    ) -> SubscriptionView:
        client = self.clients.get(subscription.env, subscription.client_id)
        return SubscriptionView(
            subscription,
            client.status if client else None,
            self._activity(seen, subscription.env, subscription.client_id),
        )

    def sandbox_record(self, actor: int, application_id: int) -> SandboxRecord:
        """The application's sandbox subscription and its use: SMART authorizations and API calls."""
        self.staff.require(actor, Permission.APPS_READ)
        subscription = self.applications.subscription(application_id, self.applications.sandbox_env)
        if subscription is None:
            return SandboxRecord(None, NEVER, 0)
        env, client_id = subscription.env, subscription.client_id
        return SandboxRecord(
            subscription,
            self._activity(self._seen(), env, client_id),
            self.calls.successful_calls(env, client_id),
        )

    # ---- clients registered by operators -----------------------------------------------------------
    def operator_clients(self, actor: int, query: str = "") -> list[OperatorClient]:
        """Clients of every environment that no subscription holds, whose name contains `query`."""
        self.staff.require(actor, Permission.APPS_READ)
        with self.engine.connect() as conn:
            held = set(conn.execute(select(portal_subscription.c.env, portal_subscription.c.client_id)).all())
        seen = self._seen()
        needle = query.strip().lower()
        found = [
            OperatorClient(client, self._activity(seen, env, client.client_id))
            for env in self.environments
            for client in self.clients.list(env)
            if (env, client.client_id) not in held and needle in client.name.lower()
        ]
        return sorted(found, key=lambda c: (c.client.name.lower(), c.client.env))

    def operator_client(self, actor: int, env: str, client_id: str) -> OperatorClient:
        self.staff.require(actor, Permission.APPS_READ)
        client = self.clients.get(env, client_id) if env in self.environments else None
        if client is None or self.applications.subscription_by_client(env, client_id) is not None:
            raise NotFound("no such operator-registered client")
        return OperatorClient(client, self._activity(self._seen(), env, client_id))

    # ---- people ------------------------------------------------------------------------------------
    def find_people(self, actor: int, query: str = "", limit: int = 200) -> list[PersonView]:
        """Developer and staff accounts whose e-mail address contains `query`."""
        self.staff.require(actor, Permission.APPS_READ)
        return [self._person(p.id) for p in self.people.search(query, limit)]

    def person(self, actor: int, account_id: int) -> PersonView:
        self.staff.require(actor, Permission.APPS_READ)
        return self._person(account_id)

    def _person(self, account_id: int) -> PersonView:
        person = self.people.get(account_id)
        if person is None:
            raise NotFound("no such account")
        last = self.people.last_sign_in(account_id)
        with self.engine.connect() as conn:
            memberships = conn.execute(
                select(portal_membership.c.organization_id, portal_membership.c.role).where(
                    portal_membership.c.account_id == account_id
                )
            ).all()
        organizations = [(self.organizations.get(m.organization_id), m.role) for m in memberships]
        return PersonView(person, last, self.staff.get(account_id), organizations)


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
