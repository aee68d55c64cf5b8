"""Applications, their subscriptions (one per environment) and their credentials.

An application belongs to an organization and holds what the developer registered. Each subscription is one
OAuth client in one environment, created through the oauth domain's `ClientStore` (the portal never writes the
authorization server's tables): the **sandbox** subscription is created with the application, at once and
without review; the **production** one only when a reviewer approves a production request (`reviews.py`).

Credentials are shown once. A sandbox secret is shown when the application is registered. A production
subscription's secret is never held by the portal: when the developer reveals the credentials of an approved
subscription, a fresh secret is issued and shown, and the reveal cannot be repeated (rotating is the way to a
new secret). A rotation may keep the old secret working for an overlap of at most 24 hours.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, select

from openpayer.db import write_transaction
from openpayer.oauth.clients import MAX_SECRET_OVERLAP, ClientStore
from openpayer.portal import validation
from openpayer.portal.errors import Conflict, Invalid, NotFound
from openpayer.portal.interfaces import Clock
from openpayer.portal.models import portal_application, portal_subscription
from openpayer.portal.organizations import OrganizationService
from openpayer.portal.staff import Permission, StaffService, record_audit


class ClientType(StrEnum):
    PUBLIC = "public"  # PKCE only, no secret (a browser or native app)
    CONFIDENTIAL_SECRET = "confidential_secret"  # noqa: S105 - a kind, not a secret; client_secret_basic / client_secret_post
    PRIVATE_KEY_JWT = "private_key_jwt"  # signed assertions checked against a JWKS or JWKS URL


@dataclass(frozen=True, slots=True)
class ApplicationDetails:
    """What a developer registers; `clean()` applies every rule and returns the values to store."""

    name: str
    description: str
    website: str
    privacy_policy_url: str
    support_email: str
    redirect_uris: tuple[str, ...]
    client_type: str
    scopes: tuple[str, ...] = ()
    backend_access: bool = False
    terms_url: str = ""
    jwks_url: str = ""
    jwks: str = ""

    def clean(self) -> dict[str, Any]:
        try:
            kind = ClientType(self.client_type)
        except ValueError as exc:
            raise Invalid(
                "choose public, confidential with a secret, or private_key_jwt", "client_type"
            ) from exc
        if self.backend_access and kind is ClientType.PUBLIC:
            raise Invalid("backend (system) access needs a confidential client", "client_type")
        jwks_url = validation.https_url(self.jwks_url, "jwks_url", required=False)
        jwks = validation.jwks(self.jwks) if self.jwks.strip() else None
        if kind is ClientType.PRIVATE_KEY_JWT and (jwks_url is None) == (jwks is None):
            raise Invalid("private_key_jwt needs either a JWKS URL or a JWKS (one of them)", "jwks_url")
        if kind is not ClientType.PRIVATE_KEY_JWT and (jwks_url or jwks):
            raise Invalid("a JWKS is only for private_key_jwt clients", "jwks_url")
        return {
            "name": validation.text(self.name, "name", max_length=100),
            "description": validation.text(self.description, "description", max_length=2000),
            "website": validation.https_url(self.website, "website"),
            "privacy_policy_url": validation.https_url(self.privacy_policy_url, "privacy_policy_url"),
            "terms_url": validation.https_url(self.terms_url, "terms_url", required=False),
            "support_email": validation.email(self.support_email, "support_email"),
            "redirect_uris": json.dumps(
                validation.redirect_uris(self.redirect_uris, required=not self.backend_access)
            ),
            "client_type": kind.value,
            "jwks_url": jwks_url,
            "jwks": json.dumps(jwks) if jwks is not None else None,
            "scopes": " ".join(validation.scopes(self.scopes, backend_access=self.backend_access)),
            "backend_access": self.backend_access,
        }


@dataclass(frozen=True, slots=True)
class Application:
    id: int
    organization_id: int
    name: str
    description: str
    website: str
    privacy_policy_url: str
    terms_url: str | None
    support_email: str
    logo_type: str | None
    redirect_uris: tuple[str, ...]
    client_type: ClientType
    jwks_url: str | None
    jwks: str | None
    scopes: tuple[str, ...]
    backend_access: bool
    status: str
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    application_id: int
    env: str
    client_id: str
    status: str  # active | suspended | removed
    created_at: int
    credentials_revealed_at: int | None


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the developer sees once: the client id, and the secret for confidential-secret clients."""

    env: str
    client_id: str
    client_type: ClientType
    client_secret: str | None = field(default=None, repr=False)


class ApplicationService:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        clients: ClientStore,
        organizations: OrganizationService,
        staff: StaffService,
        *,
        sandbox_env: str,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.clients = clients
        self.organizations = organizations
        self.staff = staff
        self.sandbox_env = sandbox_env

    # ---- registration ------------------------------------------------------------------------------
    def register(
        self,
        account_id: int,
        organization_id: int,
        details: ApplicationDetails,
        logo: bytes | None = None,
    ) -> tuple[Application, Credentials]:
        """Register an application and its sandbox subscription; the sandbox credentials are shown now."""
        self.organizations.require_member(account_id, organization_id)
        values = details.clean()
        logo_type = validation.logo(logo) if logo else None
        now = self.clock.now()
        with write_transaction(self.engine) as conn:
            app_id = conn.execute(
                portal_application.insert()
                .values(
                    **values,
                    organization_id=organization_id,
                    logo=logo or None,
                    logo_type=logo_type,
                    status="active",
                    created_by=account_id,
                    created_at=now,
                    updated_at=now,
                )
                .returning(portal_application.c.id)
            ).scalar_one()
        application = self.get(app_id)
        credentials = self._subscribe(application, self.sandbox_env, reveal=True)
        return application, credentials

    def update(self, account_id: int, application_id: int, details: ApplicationDetails) -> Application:
        """Change the registration; every subscription's client follows (name, redirect URIs, scopes).
        The client type is fixed at registration: changing it would change the credentials."""
        current = self.get(application_id)
        self.organizations.require_member(account_id, current.organization_id)
        values = details.clean()
        if values["client_type"] != current.client_type.value:
            raise Invalid("the client type cannot change; register a new application instead", "client_type")
        with write_transaction(self.engine) as conn:
            conn.execute(
                portal_application.update()
                .where(portal_application.c.id == application_id)
                .values(**values, updated_at=self.clock.now())
            )
        updated = self.get(application_id)
        developer = self.organizations.get(updated.organization_id).legal_name
        for subscription in self.subscriptions(application_id):
            self.clients.update(
                subscription.env,
                subscription.client_id,
                name=updated.name,
                redirect_uris=updated.redirect_uris,
                scopes=updated.scopes,
                developer=developer,
                privacy_policy_url=updated.privacy_policy_url,
            )
        return updated

    def set_logo(self, account_id: int, application_id: int, logo: bytes | None) -> None:
        current = self.get(application_id)
        self.organizations.require_member(account_id, current.organization_id)
        logo_type = validation.logo(logo) if logo else None
        with write_transaction(self.engine) as conn:
            conn.execute(
                portal_application.update()
                .where(portal_application.c.id == application_id)
                .values(logo=logo or None, logo_type=logo_type, updated_at=self.clock.now())
            )

    def logo(self, application_id: int) -> tuple[bytes, str] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(portal_application.c.logo, portal_application.c.logo_type).where(
                    portal_application.c.id == application_id
                )
            ).first()
        if row is None or row.logo is None:
            return None
        return bytes(row.logo), row.logo_type

    # ---- reading -----------------------------------------------------------------------------------
    def get(self, application_id: int) -> Application:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(*_APPLICATION_COLUMNS).where(portal_application.c.id == application_id)
            ).first()
        if row is None:
            raise NotFound("no such application")
        return _application(row)

    def organization_removed(self, application_id: int) -> bool:
        """Whether the application's organization was removed (by staff or the inactivity policy)."""
        return self.organizations.get(self.get(application_id).organization_id).status == "removed"

    def for_member(self, account_id: int, application_id: int) -> Application:
        """The application, if the account belongs to its organization (else `Forbidden`)."""
        application = self.get(application_id)
        self.organizations.require_member(account_id, application.organization_id)
        return application

    def of_organization(self, account_id: int, organization_id: int) -> list[Application]:
        self.organizations.require_member(account_id, organization_id)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(*_APPLICATION_COLUMNS)
                .where(
                    portal_application.c.organization_id == organization_id,
                    portal_application.c.status == "active",
                )
                .order_by(portal_application.c.name)
            ).all()
        return [_application(row) for row in rows]

    def all_for_staff(self, actor: int, *, query: str = "", limit: int = 200) -> list[Application]:
        """Applications whose name contains `query` (case-insensitive), for the console."""
        self.staff.require(actor, Permission.APPS_READ)
        statement = select(*_APPLICATION_COLUMNS).order_by(portal_application.c.name).limit(limit)
        if query.strip():
            statement = statement.where(
                portal_application.c.name.ilike(f"%{_escape_like(query.strip())}%", escape="\\")
            )
        with self.engine.connect() as conn:
            rows = conn.execute(statement).all()
        return [_application(row) for row in rows]

    def subscriptions(self, application_id: int) -> list[Subscription]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(portal_subscription)
                .where(portal_subscription.c.application_id == application_id)
                .order_by(portal_subscription.c.env)
            ).all()
        return [_subscription(row) for row in rows]

    def subscription(self, application_id: int, env: str) -> Subscription | None:
        return next((s for s in self.subscriptions(application_id) if s.env == env), None)

    def subscription_by_id(self, subscription_id: int) -> Subscription:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(portal_subscription).where(portal_subscription.c.id == subscription_id)
            ).first()
        if row is None:
            raise NotFound("no such subscription")
        return _subscription(row)

    def subscription_by_client(self, env: str, client_id: str) -> Subscription | None:
        """The subscription behind an OAuth client (for security events and activity, per environment)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(portal_subscription).where(
                    portal_subscription.c.env == env, portal_subscription.c.client_id == client_id
                )
            ).first()
        return _subscription(row) if row is not None else None

    # ---- subscriptions and credentials -------------------------------------------------------------
    def subscribe_approved(self, application_id: int, env: str) -> Subscription:
        """The production subscription, created when a reviewer approves (credentials not yet revealed)."""
        application = self.get(application_id)
        self._subscribe(application, env, reveal=False)
        found = self.subscription(application_id, env)
        assert found is not None
        return found

    def _subscribe(self, application: Application, env: str, *, reveal: bool) -> Credentials:
        if self.subscription(application.id, env) is not None:
            raise Conflict(f"the application already has a {env} subscription")
        organization = self.organizations.get(application.organization_id)
        if organization.status == "removed":
            raise Conflict("the application's organization has been removed")
        client_id, secret = self.clients.register(
            env,
            name=application.name,
            redirect_uris=application.redirect_uris,
            public=application.client_type is ClientType.PUBLIC,
            jwks=json.loads(application.jwks) if application.jwks else None,
            jwks_url=application.jwks_url,
            scopes=application.scopes,
            developer=organization.legal_name,
            privacy_policy_url=application.privacy_policy_url,
        )
        now = self.clock.now()
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(
                    portal_subscription.insert().values(
                        application_id=application.id,
                        env=env,
                        client_id=client_id,
                        status="active",
                        created_at=now,
                        credentials_revealed_at=now if reveal else None,
                    )
                )
        except Exception:
            # Two requests raced for the same (application, environment): the loser's client never works.
            self.clients.set_status(env, client_id, "removed")
            raise
        return Credentials(env, client_id, application.client_type, secret if reveal else None)

    def reveal_credentials(self, account_id: int, subscription_id: int) -> Credentials:
        """The credentials of an approved subscription, once. A confidential client gets a fresh secret here,
        so that no secret waits in the database between approval and reveal."""
        subscription = self.subscription_by_id(subscription_id)
        application = self.for_member(account_id, subscription.application_id)
        if subscription.status != "active":
            raise Conflict("this subscription is not active")
        with write_transaction(self.engine) as conn:
            claimed = conn.execute(
                portal_subscription.update()
                .where(
                    portal_subscription.c.id == subscription_id,
                    portal_subscription.c.credentials_revealed_at.is_(None),
                )
                .values(credentials_revealed_at=self.clock.now())
            ).rowcount
        if not claimed:
            raise Conflict("these credentials were already shown; rotate the secret to get a new one")
        secret = None
        if application.client_type is ClientType.CONFIDENTIAL_SECRET:
            secret = self.clients.rotate_secret(subscription.env, subscription.client_id, 0)
        return Credentials(subscription.env, subscription.client_id, application.client_type, secret)

    def rotate_secret(self, account_id: int, subscription_id: int, overlap_seconds: int = 0) -> Credentials:
        """A new secret, shown once; the old one works for `overlap_seconds` more (at most 24 hours)."""
        subscription = self.subscription_by_id(subscription_id)
        application = self.for_member(account_id, subscription.application_id)
        if application.client_type is not ClientType.CONFIDENTIAL_SECRET:
            raise Conflict("only a confidential client with a secret has a secret to rotate")
        if subscription.status != "active":
            raise Conflict("this subscription is not active")
        if subscription.credentials_revealed_at is None:
            raise Conflict("reveal the credentials first")
        if not 0 <= overlap_seconds <= MAX_SECRET_OVERLAP:
            raise Invalid("the overlap is between 0 and 24 hours", "overlap")
        secret = self.clients.rotate_secret(subscription.env, subscription.client_id, overlap_seconds)
        return Credentials(subscription.env, subscription.client_id, application.client_type, secret)

    # ---- staff actions -----------------------------------------------------------------------------
    def set_status(
        self, actor: int, subscription_id: int, status: str, *, reason: str, address: str | None = None
    ) -> Subscription:
        """Suspend (`suspended`) or restore (`active`) a subscription: its OAuth client follows at once."""
        self.staff.require(actor, Permission.SUBSCRIPTIONS_SUSPEND)
        if status not in ("active", "suspended"):
            raise Invalid("the status is active or suspended", "status")
        reason = validation.text(reason, "reason", max_length=1000)
        subscription = self.subscription_by_id(subscription_id)
        if subscription.status == "removed":
            raise Conflict("a removed subscription cannot change")
        self.clients.set_status(subscription.env, subscription.client_id, status)
        with write_transaction(self.engine) as conn:
            conn.execute(
                portal_subscription.update()
                .where(portal_subscription.c.id == subscription_id)
                .values(status=status)
            )
            record_audit(
                conn,
                at=self.clock.now(),
                actor=actor,
                action="subscription:suspend" if status == "suspended" else "subscription:restore",
                target_type="subscription",
                target_id=subscription_id,
                before={"status": subscription.status},
                after={"status": status, "reason": reason},
                address=address,
            )
        return self.subscription_by_id(subscription_id)

    def staff_rotate(
        self, actor: int, subscription_id: int, *, reason: str, address: str | None = None
    ) -> None:
        """Incident response: the current secret stops at once. Nobody sees a new one until the developer
        reveals the credentials again (the reveal issues a fresh secret)."""
        self.staff.require(actor, Permission.SUBSCRIPTIONS_ROTATE)
        reason = validation.text(reason, "reason", max_length=1000)
        subscription = self.subscription_by_id(subscription_id)
        application = self.get(subscription.application_id)
        if application.client_type is not ClientType.CONFIDENTIAL_SECRET:
            raise Conflict("only a confidential client with a secret has a secret to rotate")
        self.clients.rotate_secret(subscription.env, subscription.client_id, 0)  # the new secret is discarded
        with write_transaction(self.engine) as conn:
            conn.execute(
                portal_subscription.update()
                .where(portal_subscription.c.id == subscription_id)
                .values(credentials_revealed_at=None)
            )
            record_audit(
                conn,
                at=self.clock.now(),
                actor=actor,
                action="subscription:rotate",
                target_type="subscription",
                target_id=subscription_id,
                before={"credentials_revealed": subscription.credentials_revealed_at is not None},
                after={"credentials_revealed": False, "reason": reason},
                address=address,
            )


_APPLICATION_COLUMNS = [c for c in portal_application.c if c.name != "logo"]


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _split(value: str) -> tuple[str, ...]:
    return tuple(value.split())


def _application(row: Any) -> Application:
    return Application(
        id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        description=row.description,
        website=row.website,
        privacy_policy_url=row.privacy_policy_url,
        terms_url=row.terms_url,
        support_email=row.support_email,
        logo_type=row.logo_type,
        redirect_uris=tuple(json.loads(row.redirect_uris)),
        client_type=ClientType(row.client_type),
        jwks_url=row.jwks_url,
        jwks=row.jwks,
        scopes=_split(row.scopes),
        backend_access=bool(row.backend_access),
        status=row.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _subscription(row: Any) -> Subscription:
    return Subscription(
        id=row.id,
        application_id=row.application_id,
        env=row.env,
        client_id=row.client_id,
        status=row.status,
        created_at=row.created_at,
        credentials_revealed_at=row.credentials_revealed_at,
    )
