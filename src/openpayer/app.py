"""The ASGI application: routes, middleware and error handlers around the services the composition root
(`openpayer.bootstrap`) builds from settings."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from openpayer import __version__
from openpayer.api.fhir_routes import build_router
from openpayer.api.negotiation import error_response
from openpayer.bootstrap import Services, build_services
from openpayer.config import Settings, get_settings
from openpayer.docs_site.openapi import install_openapi
from openpayer.docs_site.routes import router as docs_router
from openpayer.fhir.errors import (
    BadRequest,
    FHIRError,
    MethodNotAllowed,
    NotFound,
)
from openpayer.oauth import routes as oauth_routes
from openpayer.oauth.guard import SmartGuard
from openpayer.policy.routes import router as policy_router

log = logging.getLogger("openpayer")

# `Services` and `build_services` live in `openpayer.bootstrap`; re-exported for existing imports.
__all__ = ["Services", "build_services", "create_app"]


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
    app.state.fhir_api = services.api
    app.state.auth = services.auth
    oauth_routes.install(app)  # before the FHIR routers: SMART discovery under /{env}/fhir
    app.include_router(build_router("fhir"))
    app.include_router(build_router("directory"))
    _install_operations_routes(app, services)
    app.include_router(docs_router)
    app.include_router(policy_router)  # the signed "still in use" link of the inactivity notices
    install_openapi(app)
    _install_error_handlers(app)
    if services.settings.auth_enforce:
        app.add_middleware(SmartGuard, auth=services.auth, registry=services.registry)
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
