"""The composition root: builds the ASGI application from settings and binds interfaces to implementations."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine, text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from openpayer import __version__
from openpayer.api.context import DIRECTORY_TYPES
from openpayer.api.fhir_routes import build_router
from openpayer.api.negotiation import error_response
from openpayer.api.operations import OperationRoutes
from openpayer.api.search_routes import SearchRoutes
from openpayer.background import Background, build_background
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
from openpayer.portal.services import Portal

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
    background: Background = field(init=False)  # job registry, queue, runner and email (openpayer.jobs)
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
    services.background = build_background(settings, engine, services.auth.clock)
    services.portal = Portal.build(settings, engine, services.auth.clock, services.auth.clients)
    return services


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    settings = settings or get_settings()
    services = services or build_services(settings)
    app = FastAPI(
        title="OpenPayer",
        version=__version__,
        description="CMS Interoperability APIs: Patient Access, Provider Directory, Formulary (FHIR R4).",
        docs_url=None,  # Swagger UI loads from a CDN: /docs/api is served by openpayer.docs_site instead
        redoc_url=None,
    )
    app.state.services = services
    oauth_routes.install(app, services)  # before the FHIR routers: SMART discovery under /{env}/fhir
    app.include_router(build_router("fhir"))
    app.include_router(build_router("directory"))
    _install_operations_routes(app, services)
    app.include_router(docs_router)
    install_openapi(app)
    _install_error_handlers(app)
    return app


def _install_operations_routes(app: FastAPI, services: Services) -> None:
    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        try:
            with services.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            log.warning("readiness check: database unreachable")
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})


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
        # Never a traceback to the client; the log gets the type and path, not the body.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        error = FHIRError("An unexpected error occurred; it has been logged")
        error.status = 500
        return error_response(error)
