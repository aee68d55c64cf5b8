"""The ASGI application: routes, middleware and error handlers around the services the composition root
(`openpayer.bootstrap`) builds from settings."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from openpayer import __version__
from openpayer.api.errors_log import UnhandledErrors
from openpayer.api.fhir_routes import build_router
from openpayer.api.input_guard import RejectNul
from openpayer.api.negotiation import error_response
from openpayer.bootstrap import Services, build_services
from openpayer.config import Settings, get_settings
from openpayer.docs_site import routes as docs_routes
from openpayer.docs_site.openapi import install_openapi
from openpayer.fhir.errors import (
    BadRequest,
    FHIRError,
    MethodNotAllowed,
    NotFound,
)
from openpayer.incidents import routes as incident_routes
from openpayer.oauth import routes as oauth_routes
from openpayer.oauth.cors import smart_cors_policy
from openpayer.oauth.guard import SmartGuard
from openpayer.observability import metrics
from openpayer.observability.middleware import RequestObservation
from openpayer.policy import console as policy_console
from openpayer.policy.routes import router as policy_router
from openpayer.portal import routes as portal_routes
from openpayer.security.audit_writer import AuditWriter
from openpayer.web import pages
from openpayer.web.cors import CorsMiddleware
from openpayer.web.headers import SecurityHeaders
from openpayer.web.layers import LayeredApp
from openpayer.web.proxies import TrustedProxies, parse_networks
from openpayer.web.routes import add_plain_route, answer_head_like_get
from openpayer.web.threads import run_blocking

log = logging.getLogger("openpayer")

# `Services` and `build_services` live in `openpayer.bootstrap`; re-exported for existing imports.
__all__ = ["Services", "build_services", "create_app"]


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
        # FastAPI's own OpenTelemetry layer looks up its providers on every request; our metrics, logs and
        # request ids are `observability/`'s (docs/operations.md), so the layer only cost time.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.services = services
    app.state.fhir_api = services.api
    app.state.auth = services.auth
    # Routes are matched in order, each check a regular expression (and FastAPI's scope bookkeeping):
    # first the probes a load balancer sends every few seconds, then the token endpoint and the FHIR APIs.
    _install_operations_routes(app, services)
    oauth_routes.install(app)  # before the FHIR routers: SMART discovery under /{env}/fhir
    app.include_router(build_router("fhir"))
    app.include_router(build_router("directory"))
    oauth_routes.install_pages(app)
    portal_routes.install(app, services.portal, services.settings, services.clock)
    incident_routes.install(app, services.incidents, services.portal, services.settings, services.clock)
    app.include_router(docs_routes.router)
    app.include_router(policy_router)  # the signed "still in use" link of the inactivity notices
    policy_console.install(app, services.portal, services.policy, services.settings, services.clock)
    answer_head_like_get(app)
    install_openapi(app)
    _install_error_handlers(app)
    _install_middleware(app, services)
    _declare_path_parameters(app)
    _install_outer_layers(app, services.settings)  # around everything, Starlette's error handling too
    return app


def _install_middleware(app: FastAPI, services: Services) -> None:
    """Innermost first: the bearer-token guard, the audit writer, CORS, the NUL check, and outermost the
    handler that turns any error below into a logged, sanitised 500."""
    settings = services.settings
    if settings.auth_enforce:
        app.add_middleware(
            SmartGuard,
            auth=services.auth,
            registry=services.registry,
            operations=services.api.operations,
            render_error=error_response,
        )
    app.add_middleware(AuditWriter, buffers=[services.auth.audit, services.auth.activity, services.security])
    if settings.auth_enforce:
        app.add_middleware(
            CorsMiddleware, policy=smart_cors_policy(settings.environments, services.auth.clients)
        )
    app.add_middleware(RejectNul, max_body_bytes=settings.max_body_bytes)  # before the guard
    app.add_middleware(UnhandledErrors)  # outermost: any error below becomes a logged, sanitised 500


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
        keys_problem = services.auth.keys.decryption_problem()
    except Exception:  # the database is unreachable: /readyz says so; it may come back
        log.warning("startup: the signing keys could not be checked (database unreachable)")
        keys_problem = None
    if keys_problem:
        problems.append(keys_problem)
    return problems


def _refuse_to_start_when_misconfigured(services: Services) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        problems = await run_blocking(startup_problems, services)
        for problem in problems:
            log.critical("refusing to start: %s", problem)
        if problems:
            raise StartupRefused(" ".join(problems))
        services.revocations.start()  # suspensions from other hosts drop this one's caches (< 1 s)
        try:
            yield
        finally:
            services.revocations.stop()

    return lifespan


def _declare_path_parameters(app: FastAPI) -> None:
    """The routes read `{env}` (and `{rtype}`…) from the path without a typed argument, so FastAPI leaves
    them out of the OpenAPI document; add every template variable an operation does not declare, so
    that clients and fuzzers (tests/api/test_fuzz.py) can build valid URLs from it."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if getattr(app.state, "openapi_paths_declared", False):
            return generate()
        schema = generate()  # openpayer.docs_site.openapi's: unique operationIds
        for path, operations in schema.get("paths", {}).items():
            names = re.findall(r"{([^}/]+)}", path)
            for operation in operations.values():
                declared = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"}
                missing = [name for name in names if name not in declared]
                operation.setdefault("parameters", [])
                for name in missing:
                    operation["parameters"].append(
                        {
                            "name": name,
                            "in": "path",
                            "required": True,
                            "schema": {
                                "type": "string",
                                "enum": list(app.state.services.settings.environments),
                            }
                            if name == "env"
                            else {"type": "string"},
                        }
                    )
        app.openapi_schema = schema
        app.state.openapi_paths_declared = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _install_operations_routes(app: FastAPI, services: Services) -> None:
    async def healthz(request: Request) -> Response:
        # a plain coroutine route: no thread-pool hand-off, no response-model handling (docs/performance.md,
        # "The layers every request crosses")
        return JSONResponse({"status": "ok"})

    add_plain_route(app, "/healthz", healthz, methods=["GET"])

    add_plain_route(app, "/readyz", services.readiness.endpoint(), methods=["GET"])
    metrics.POOL.watch(services.engine)
    token = services.settings.metrics_token
    endpoint = metrics.metrics_endpoint(token.get_secret_value() if token else None)
    add_plain_route(app, "/metrics", endpoint, methods=["GET"])


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


def _http_error_response(request: Request, exc: StarletteHTTPException) -> Response:
    """Each area answers an unknown address or a refused method in its own kind of body: FHIR an
    OperationOutcome, the authorization server RFC 6749's JSON (or a member page), pages a readable page."""
    path, status = request.url.path, exc.status_code
    if portal_routes.is_page_path(path):
        return portal_routes.error_page(request, status)
    if _is_fhir_path(path):
        mapped: FHIRError
        if status == 404:
            mapped = NotFound(f"No such endpoint: {path}")
        elif status == 405:
            mapped = MethodNotAllowed(f"{request.method} is not allowed on {path}")
        else:
            mapped = BadRequest(str(exc.detail))
            mapped.status = status
        return error_response(mapped)
    if status in (404, 405):
        if oauth_routes.is_auth_path(path):
            return oauth_routes.http_error(request, status)
        if docs_routes.is_docs_path(path):
            return docs_routes.http_error(request, status)
        return pages.http_error(request, status)
    return JSONResponse({"detail": exc.detail}, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FHIRError)
    async def fhir_error(request: Request, exc: FHIRError) -> Response:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        response = _http_error_response(request, exc)
        # Starlette's headers: a 405's `Allow`, which RFC 9110 §15.5.6 requires.
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return error_response(BadRequest("The request is malformed"))
