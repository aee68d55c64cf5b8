"""The composition root: builds the ASGI application from settings and binds interfaces to implementations."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from openpayer import __version__
from openpayer.api.context import DIRECTORY_TYPES
from openpayer.api.fhir_routes import build_router
from openpayer.api.negotiation import error_response
from openpayer.api.operations import OperationRoutes
from openpayer.api.search_routes import SearchRoutes
from openpayer.config import Settings, get_settings
from openpayer.conformance.capability import ConformanceContributor
from openpayer.db import make_engine
from openpayer.docs_site.openapi import install_openapi
from openpayer.docs_site.routes import router as docs_router
from openpayer.fhir.bundles import BundleProcessor
from openpayer.fhir.capabilities import Contributor, OperationInfo, capability_statement
from openpayer.fhir.errors import (
    BadRequest,
    FHIRError,
    MethodNotAllowed,
    NotFound,
)
from openpayer.fhir.operations import member_match as member_match_op
from openpayer.fhir.operations import validate as validate_op
from openpayer.fhir.paging import CursorSigner
from openpayer.fhir.search.extract import extract_index
from openpayer.fhir.search.registry import SearchParamRegistry, default_registry
from openpayer.fhir.search.service import SearchService
from openpayer.fhir.services import FhirService, parse_query
from openpayer.fhir.storage.repository import ResourceRepository
from openpayer.fhir.validation import known_resource_types, validate_resource
from openpayer.oauth import routes as oauth_routes
from openpayer.oauth.service import AuthServer
from openpayer.observability import metrics
from openpayer.observability.middleware import RequestObservation
from openpayer.observability.readiness import Readiness
from openpayer.portal.services import Portal
from openpayer.web.headers import SecurityHeaders
from openpayer.web.layers import LayeredApp
from openpayer.web.proxies import TrustedProxies, parse_networks

log = logging.getLogger("openpayer")


@dataclass
class Services:
    """Everything a request handler may use; built once per application."""

    settings: Settings
    engine: Engine
    registry: SearchParamRegistry
    signer: CursorSigner
    fhir: FhirService
    search: SearchService
    bundles: BundleProcessor
    resource_types: frozenset[str]
    search_routes: SearchRoutes = field(default_factory=SearchRoutes)
    operations: OperationRoutes = field(default_factory=OperationRoutes)
    capability_contributors: list[Contributor] = field(default_factory=list)
    _capabilities: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    auth: AuthServer = field(init=False)  # SMART/OIDC authorization server (openpayer.oauth)
    portal: Portal = field(init=False)  # developer portal and app review (openpayer.portal)

    def page_size(self, raw: str | None) -> int:
        if raw is None:
            return self.settings.default_page_size
        if not raw.isdigit():
            raise BadRequest(f"_count must be a non-negative integer, not {raw!r}")
        return max(1, min(int(raw), self.settings.max_page_size))

    def operations_for(self, kind: str) -> list[OperationInfo]:
        types = tuple(sorted(self.types_for(kind)))
        ops = [validate_op.info(types)]
        if kind == "fhir":
            ops.append(
                OperationInfo(
                    "everything", "http://hl7.org/fhir/OperationDefinition/Patient-everything", ("Patient",)
                )
            )
            ops.append(member_match_op.info())
        return ops

    def types_for(self, kind: str) -> frozenset[str]:
        return DIRECTORY_TYPES if kind == "directory" else self.resource_types

    def capability(self, kind: str, base_url: str) -> dict[str, Any]:
        key = (kind, base_url)
        if key not in self._capabilities:
            self._capabilities[key] = capability_statement(
                kind=kind,
                base_url=base_url,
                resource_types=self.types_for(kind),
                params=self.registry,
                operations=self.operations_for(kind),
                read_only=kind == "directory",
                contributors=self.capability_contributors,
            )
        return self._capabilities[key]


def build_services(settings: Settings, engine: Engine | None = None) -> Services:
    engine = engine or make_engine(settings.resolved_database_url, echo=settings.sql_echo)
    registry = default_registry()
    signer = CursorSigner(settings.resolved_secret_key)
    search = SearchService(
        registry,
        signer,
        default_count=settings.default_page_size,
        max_count=settings.max_page_size,
        include_cap=settings.include_cap,
    )
    repository = ResourceRepository(extract_index)
    fhir = FhirService(engine, validator=validate_resource, repository=repository, matcher=search)
    types = known_resource_types()

    def bundle_search(conn: Any, env: str, rtype: str, query: str, base_url: str) -> dict[str, Any]:
        import orjson

        from openpayer.fhir.search.bundle import render_searchset

        result = search.search(conn, env, rtype, parse_query(query), base_url=base_url)
        parsed: dict[str, Any] = orjson.loads(render_searchset(result))
        return parsed

    bundles = BundleProcessor(fhir, bundle_search, types)
    services = Services(settings, engine, registry, signer, fhir, search, bundles, types)
    services.capability_contributors.append(ConformanceContributor(registry))  # IG profiles, instantiates
    services.auth = AuthServer.build(settings, engine)
    services.portal = Portal.build(settings, engine, services.auth.clock, services.auth.clients)
    return services


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    settings = settings or get_settings()
    services = services or build_services(settings)
    app = LayeredApp(
        title="OpenPayer",
        version=__version__,
        description="CMS Interoperability APIs: Patient Access, Provider Directory, Formulary (FHIR R4).",
        docs_url=None,  # Swagger UI loads from a CDN: /docs/api is served by openpayer.docs_site instead
        redoc_url=None,
        lifespan=_refuse_to_start_when_misconfigured(services),
    )
    app.state.services = services
    oauth_routes.install(app, services)  # before the FHIR routers: SMART discovery under /{env}/fhir
    app.include_router(build_router("fhir"))
    app.include_router(build_router("directory"))
    _install_operations_routes(app, services)
    app.include_router(docs_router)
    install_openapi(app)
    _install_error_handlers(app)
    _install_outer_layers(app, services.settings)
    return app


class StartupRefused(RuntimeError):
    """This host must not serve as configured; the message names the setting to fix."""


def startup_problems(services: Services) -> list[str]:
    """What makes serving wrong rather than merely unready: links built from a client's Host header on a
    public interface, or signing keys that another host sealed under another secret (every /token and
    /jwks would answer 500 while the other hosts work)."""
    problems = []
    url_problem = services.settings.public_base_url_problem()
    if url_problem:
        problems.append(url_problem)
    try:
        failing = services.auth.keys.undecryptable()
    except Exception:  # the database is unreachable: /readyz says so; it may come back
        log.warning("startup: the signing keys could not be checked (database unreachable)")
        failing = []
    if failing:
        problems.append(keys_problem(failing))
    return problems


def keys_problem(envs: list[str]) -> str:
    return (
        f"The signing keys of {', '.join(envs)} in the database were encrypted by a host with another key: "
        "set OPENPAYER_AUTH_KEY_ENCRYPTION_KEY (or, where it is unset, OPENPAYER_SECRET_KEY) to the value "
        "the other hosts of this deployment use."
    )


def _refuse_to_start_when_misconfigured(services: Services) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        problems = await run_in_threadpool(startup_problems, services)
        for problem in problems:
            log.critical("refusing to start: %s", problem)
        if problems:
            raise StartupRefused(" ".join(problems))
        yield

    return lifespan


def readiness_checks(services: Services) -> Readiness:
    """/readyz: the database answers, this host can decrypt the signing keys, and Redis answers when set."""
    readiness = Readiness()

    def database() -> None:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def signing_keys() -> str | None:
        failing = services.auth.keys.undecryptable()
        return keys_problem(failing) if failing else None

    readiness.add("database", database)
    readiness.add("signing_keys", signing_keys)
    redis_url = services.settings.redis_url
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)

        def redis_answers() -> None:
            client.ping()

        readiness.add("redis", redis_answers)
    return readiness


def _install_operations_routes(app: FastAPI, services: Services) -> None:
    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_route("/readyz", readiness_checks(services).endpoint(), methods=["GET"], include_in_schema=False)
    metrics.POOL.watch(services.engine)
    endpoint = metrics.metrics_endpoint(services.settings.metrics_token)
    app.add_route("/metrics", endpoint, methods=["GET"], include_in_schema=False)


def _install_outer_layers(app: LayeredApp, settings: Settings) -> None:
    """Added innermost first: security headers, then request ids, logs and metrics, then (outermost) the
    proxy's view of the client address and scheme, which everything inside sees."""
    https_origin = (settings.public_base_url or "").startswith("https://")
    app.add_outer_layer(lambda inner: SecurityHeaders(inner, https_origin=https_origin))
    app.add_outer_layer(lambda inner: RequestObservation(inner, settings.environments))
    networks = parse_networks(settings.trusted_proxies)
    if networks:
        app.add_outer_layer(lambda inner: TrustedProxies(inner, networks))


def _is_fhir_path(path: str) -> bool:
    parts = path.strip("/").split("/")
    return len(parts) >= 2 and parts[1] in ("fhir", "directory")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FHIRError)
    async def fhir_error(request: Request, exc: FHIRError) -> Response:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_fhir_path(request.url.path) or exc.status_code in (404, 405):
            mapped: FHIRError
            if exc.status_code == 404:
                mapped = NotFound(f"No such endpoint: {request.url.path}")
            elif exc.status_code == 405:
                mapped = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
            else:
                mapped = BadRequest(str(exc.detail))
                mapped.status = exc.status_code
            return error_response(mapped)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return error_response(BadRequest("The request is malformed"))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # Never a traceback to the client; the log gets the route template, not the path (ids) or body.
        route = getattr(request.scope.get("route"), "path", None)
        log.exception("unhandled error", extra={"fields": {"route": route, "error": type(exc).__name__}})
        error = FHIRError("An unexpected error occurred; it has been logged")
        error.status = 500
        return error_response(error)
