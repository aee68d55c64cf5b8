"""The composition root: every service of the platform is built here, once, from `Settings`.

The application (`openpayer.app`), the CLI commands and the tests' fixtures call `build_services` and use
what it returns (`openpayer seed` and `openpayer load` call `build_store`, its FHIR-store subset); nothing
else constructs a store, a sealer or a clock. Each backend is chosen here by a
setting (sign-in throttling counts in Redis when `OPENPAYER_REDIS_URL` is set, in process otherwise).

Adding a domain's services: build them in `build_services` from what is already built (one clock, one
engine, one sealer, the audit log), importing the domain inside `build_services` (this module's top
imports only what `build_store` needs), and add them as fields of `Services`; add a CapabilityStatement
`Contributor` to `services.api.capability_contributors` when the domain adds to it. `docs/architecture.md`
lists where each capability is wired.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Engine, text

from openpayer.clock import Clock
from openpayer.config import Settings
from openpayer.db import make_engine
from openpayer.fhir.paging import CursorSigner
from openpayer.fhir.search.registry import SearchParamRegistry, default_registry
from openpayer.fhir.search.service import SearchService
from openpayer.members.accounts import MemberStore
from openpayer.security.sealing import Sealer

if TYPE_CHECKING:  # imported where they are built: `build_store` needs none of them (see its docstring)
    from openpayer.accounts.events import SignInEvents
    from openpayer.api.service import FhirApi
    from openpayer.background import Background
    from openpayer.fhir.bundles import BundleProcessor
    from openpayer.fhir.services import FhirService
    from openpayer.incidents.services import Incidents
    from openpayer.oauth.keys import KeyStore
    from openpayer.oauth.revocation import RevocationFeed
    from openpayer.oauth.service import AuthServer
    from openpayer.observability.readiness import Readiness
    from openpayer.policy.engine import InactivityPolicy
    from openpayer.portal.services import Portal
    from openpayer.security.monitor import SecurityMonitor


@dataclass
class Services:
    """Every service of one process (server, CLI command or test), sharing one engine and one clock."""

    settings: Settings
    clock: Clock  # the one clock; tests move it (`services.clock.advance(61)`)
    engine: Engine
    sealer: Sealer  # encrypts secrets at rest (signing keys, TOTP secrets)
    registry: SearchParamRegistry
    signer: CursorSigner  # signs paging cursors
    fhir: FhirService
    search: SearchService
    bundles: BundleProcessor
    resource_types: frozenset[str]
    api: FhirApi  # what the FHIR routes use (`app.state.fhir_api`)
    auth: AuthServer  # the SMART/OIDC authorization server (`app.state.auth`)
    background: Background  # job registry, queue, runner and email (openpayer.background)
    portal: Portal  # the developer portal and app review (openpayer.portal)
    policy: InactivityPolicy  # the inactivity policy and its daily sweep (openpayer.policy)
    readiness: Readiness  # what /readyz checks (openpayer.observability)
    security: SecurityMonitor  # security events, throttling, detectors, RiskSink (openpayer.security)
    signin_events: SignInEvents  # every sign-in (member, developer, staff) reports here; monitors listen
    revocations: RevocationFeed  # suspensions reach every host's caches within a second (started by the app)
    incidents: Incidents  # at-risk flags (the monitor's RiskSink: `incidents.risk`), incidents, breach alerts

    def close(self) -> None:
        """Release the database pool (CLI commands and tests; the server keeps it until it stops)."""
        self.engine.dispose()


@dataclass
class Store:
    """What loading data into the FHIR store needs (`openpayer seed`, `openpayer load`): the engine, the
    search engine (conditional references) and the member logins (the sandbox's test logins)."""

    settings: Settings
    clock: Clock
    engine: Engine
    sealer: Sealer
    registry: SearchParamRegistry
    signer: CursorSigner
    search: SearchService
    members: MemberStore

    def close(self) -> None:
        self.engine.dispose()


def build_store(settings: Settings, engine: Engine | None = None, *, clock: Clock | None = None) -> Store:
    """The services `build_services` starts from, built the same way, without the web-facing domains.

    Those (the API, the authorization server, the portal, the policy, incidents, background work) are
    imported by `build_services` when it runs, not when this module is imported: a command that needs only
    the store does not import FastAPI, the portal's pages or the detectors (a third of `openpayer seed`'s
    start-up, docs/performance.md, Seeding)."""
    clock = clock or Clock()
    engine = engine or make_engine(settings.resolved_database_url, echo=settings.sql_echo)
    sealer = Sealer(settings.auth_key_encryption_key or settings.resolved_secret_key)
    registry = default_registry()
    signer = CursorSigner(settings.resolved_secret_key)
    search = SearchService(
        registry,
        signer,
        default_count=settings.default_page_size,
        max_count=settings.max_page_size,
        include_cap=settings.include_cap,
        clock=clock,
    )
    members = MemberStore(engine, clock, sealer)
    return Store(settings, clock, engine, sealer, registry, signer, search, members)


def build_services(
    settings: Settings, engine: Engine | None = None, *, clock: Clock | None = None
) -> Services:
    from openpayer.accounts.events import SignInEvents
    from openpayer.accounts.sessions import Signer
    from openpayer.accounts.signin import SignIn
    from openpayer.api.operations import fhir_operations
    from openpayer.api.service import FhirApi
    from openpayer.background import build_background
    from openpayer.conformance.capability import ConformanceContributor
    from openpayer.fhir.bundles import BundleProcessor
    from openpayer.fhir.search.bundle import render_searchset
    from openpayer.fhir.search.extract import extract_index
    from openpayer.fhir.services import FhirService, parse_query
    from openpayer.fhir.storage.repository import ResourceRepository
    from openpayer.fhir.validation import known_resource_types, validate_resource
    from openpayer.incidents.services import Incidents
    from openpayer.members.consent import GrantStore
    from openpayer.oauth.activity import ActivityLog
    from openpayer.oauth.clients import ClientStore
    from openpayer.oauth.discovery import capability_contributor as smart_capability
    from openpayer.oauth.keys import KeyStore
    from openpayer.oauth.reach import Reach
    from openpayer.oauth.revocation import RevocationFeed
    from openpayer.oauth.service import AuthServer
    from openpayer.oauth.tokens import TokenStore
    from openpayer.policy.engine import InactivityPolicy
    from openpayer.portal.app_profiles import PortalAppDirectory
    from openpayer.portal.services import Portal
    from openpayer.security.audit import AuditLog
    from openpayer.security.audit_search import AuditSearch

    store = build_store(settings, engine, clock=clock)
    clock, engine, sealer = store.clock, store.engine, store.sealer

    # ---- the FHIR engine ---------------------------------------------------------------------------
    registry, signer, search = store.registry, store.signer, store.search
    repository = ResourceRepository(extract_index, clock)
    fhir = FhirService(engine, validator=validate_resource, repository=repository, matcher=search)
    types = known_resource_types()

    def bundle_search(conn: Any, env: str, rtype: str, query: str, base_url: str) -> dict[str, Any]:
        result = search.search(conn, env, rtype, parse_query(query), base_url=base_url)
        parsed: dict[str, Any] = orjson.loads(render_searchset(result))
        return parsed

    bundles = BundleProcessor(fhir, bundle_search, types)

    # ---- the SMART authorization server and member accounts ---------------------------------------
    cache_seconds = settings.auth_token_cache_seconds
    tokens = TokenStore(engine, clock, cache_seconds)
    grants = GrantStore(engine, clock)
    grants.revoked_listeners.append(tokens.revoke_grant_tokens)  # a revoked consent revokes its tokens
    audit = AuditLog(engine, clock)
    security = build_security(settings, engine, clock)
    members = store.members
    signin_events = SignInEvents(clock)  # one hook for every sign-in path (openpayer.accounts.events)
    signin = SignIn(
        members,
        security=security,
        audit=audit,
        clock=clock,
        signer=Signer(settings.resolved_secret_key),
        session_lifetime=settings.auth_session_lifetime,
        events=signin_events,
    )
    clients = ClientStore(engine, clock, cache_seconds)
    revocations = RevocationFeed(
        engine, clock, redis_url=settings.redis_url, poll_seconds=settings.auth_revocation_poll_seconds
    )
    clients.status_listeners.append(revocations.raise_generation)  # suspend, restore, remove
    # A member disconnecting an app, a revoked token or a reused refresh token: every host stops accepting
    # the tokens within a second, not when its token cache expires.
    grants.revoked_listeners.append(lambda conn, _grant_id: revocations.raise_generation(conn))
    tokens.revoked_listeners.append(revocations.raise_generation)
    revocations.listeners += [tokens.forget_all, clients.forget_all]
    auth = AuthServer(
        settings=settings,
        engine=engine,
        clock=clock,
        keys=KeyStore(engine, sealer, clock),
        clients=clients,
        tokens=tokens,
        members=members,
        grants=grants,
        audit=audit,
        sealer=sealer,
        security=security,
        signin=signin,
        reach=Reach(fhir, cache_seconds),
        resource_types=types,
        activity=ActivityLog(engine, clock),
    )

    # ---- the FHIR API and its CapabilityStatement --------------------------------------------------
    api = FhirApi(settings, engine, registry, signer, fhir, search, bundles, types, fhir_operations())
    api.capability_contributors.append(ConformanceContributor(registry))  # IG profiles, instantiates
    api.capability_contributors.append(smart_capability)  # SMART security, oauth-uris

    # ---- background work and the domains above the authorization server ---------------------------
    background = build_background(settings, engine, clock)
    portal = Portal.build(
        settings,
        engine,
        clock,
        auth.clients,
        sealer,
        background.email,
        security,
        signin_events,
        members=members,  # monitoring accounts: member accounts bound to a synthetic Patient
        patients=lambda env, resource: fhir.create(env, "Patient", resource).stored.id,
        activity=auth.activity,  # the console's last authorization and call per client
        access=AuditSearch(engine, audit),  # the console's audit search and the CMS usage report
        tokens=tokens,  # removing an organization revokes its clients' tokens
    )
    auth.directory = PortalAppDirectory(  # the consent page and member pages read the portal's answers
        engine,
        portal.applications,
        portal.organizations,
        portal.questionnaire,
        production_env=settings.portal_production_env,
    )
    policy = InactivityPolicy(
        settings,
        engine,
        clock,
        auth.activity,
        auth.clients,
        tokens,
        background.email,
        secret=settings.resolved_secret_key,
        directory=portal.directory,  # the portal, read through its services (the console's removal too)
    )
    background.registry.periodic(
        "policy.sweep",
        86400,
        lambda context: f"{len(policy.sweep())} steps",
        offset=14 * 3600 + 30 * 60,  # 14:30 UTC: 08:30 in Chicago (CST), a working morning for replies
        description="The inactivity policy's daily sweep (docs/policy.md)",
    )

    incidents = Incidents.build(settings, engine, clock, background.email, portal)
    portal.risk = incidents.risk  # the application page shows its subscriptions' risk state
    incidents.risk.also = security.sink  # the monitor still records each finding as a detection
    security.sink = incidents.risk  # apps the detectors attribute attacks to are flagged at risk

    return Services(
        settings=settings,
        clock=clock,
        engine=engine,
        sealer=sealer,
        registry=registry,
        signer=signer,
        fhir=fhir,
        search=search,
        bundles=bundles,
        resource_types=types,
        api=api,
        auth=auth,
        background=background,
        portal=portal,
        policy=policy,
        readiness=build_readiness(settings, engine, auth.keys),
        security=security,
        signin_events=signin_events,
        revocations=revocations,
        incidents=incidents,
    )


def build_security(settings: Settings, engine: Engine, clock: Clock) -> SecurityMonitor:
    """The security event stream, throttle (Redis when configured) and detectors. Findings go to a
    `RecordingSink` (a detection row) until a domain with subscriptions rebinds `security.sink`."""
    from openpayer.security.events import AccountHasher, SecurityEvents
    from openpayer.security.monitor import SecurityMonitor
    from openpayer.security.risk import RecordingSink
    from openpayer.security.throttle import Limits, Throttle, make_counter

    events = SecurityEvents(
        engine, clock, AccountHasher(settings.resolved_secret_key), enabled=settings.detect_record_events
    )
    throttle = Throttle(
        clock, make_counter(settings.redis_url, settings.detect_memory_keys), Limits.from_settings(settings)
    )
    return SecurityMonitor(settings, engine, clock, events, throttle, RecordingSink(engine, clock))


def build_readiness(settings: Settings, engine: Engine, keys: KeyStore) -> Readiness:
    """/readyz: the database answers, this host decrypts the signing keys, and Redis answers when set."""
    from openpayer.observability.readiness import Readiness

    readiness = Readiness()

    def database() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    readiness.add("database", database)
    readiness.add("signing_keys", keys.decryption_problem)
    if settings.redis_url:
        import redis

        client = redis.Redis.from_url(settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)

        def redis_answers() -> None:
            client.ping()

        readiness.add("redis", redis_answers)
    return readiness
