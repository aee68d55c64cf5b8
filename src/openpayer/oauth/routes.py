"""Installs the authorization server's routes on the application: `/{env}/auth/...`, SMART discovery on the
FHIR and directory bases, and the pages' static files. The composition root (`openpayer.bootstrap`) adds the
SMART part of the CapabilityStatement; the application (`openpayer.app`) installs the bearer-token guard."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from openpayer.oauth.discovery import (
    openid_configuration_endpoint,
    smart_configuration_endpoint,
)
from openpayer.oauth.endpoints.authorize import authorize
from openpayer.oauth.endpoints.introspect import introspect
from openpayer.oauth.endpoints.jwks import jwks
from openpayer.oauth.endpoints.revoke import revoke
from openpayer.oauth.endpoints.token import token
from openpayer.oauth.endpoints.userinfo import userinfo
from openpayer.oauth.errors import InvalidRequestError, error_json
from openpayer.oauth.member_pages import routes as member_pages
from openpayer.oauth.member_pages.common import MemberPage
from openpayer.web.routes import add_plain_route


def install(app: FastAPI) -> None:
    """Call before the FHIR routers are included, so `.well-known` wins over `/{type}/{id}`. Only the JSON
    endpoints and discovery go here; `install_pages` adds the rest after the FHIR routers, so that a FHIR
    request is not first checked against every page's route (routes are matched in order)."""
    auth = "/{env}/auth"
    # The JSON endpoints take the request and answer a response themselves: plain Starlette routes, without
    # FastAPI's request handling (parameter solving, its response wrapping), which cost as much again as
    # the rest of the framework on the token endpoint's hot path (docs/performance.md, Token endpoint).
    add_plain_route(app, f"{auth}/token", token, methods=["POST"])
    add_plain_route(app, f"{auth}/introspect", introspect, methods=["POST"])
    add_plain_route(app, f"{auth}/revoke", revoke, methods=["POST"])
    add_plain_route(app, f"{auth}/jwks", jwks, methods=["GET"])
    add_plain_route(app, f"{auth}/userinfo", userinfo, methods=["GET", "POST"])
    add = app.add_api_route
    add(f"{auth}/.well-known/openid-configuration", openid_configuration_endpoint, methods=["GET"])
    for base in ("auth", "fhir", "directory"):
        add(f"/{{env}}/{base}/.well-known/smart-configuration", smart_configuration_endpoint, methods=["GET"])


def install_pages(app: FastAPI) -> None:
    """The authorization page, the member pages and their static files (after the FHIR routers)."""
    app.add_api_route("/{env}/auth/authorize", authorize, methods=["GET", "POST"], include_in_schema=False)
    member_pages.install(app)  # connected apps, app gallery, member education
    app.mount("/static", StaticFiles(packages=[("openpayer", "static")]), name="static")


# The addresses under `/{env}/auth/` that people open in a browser; the rest are JSON endpoints for apps.
_MEMBER_PAGES = frozenset({"authorize", "account", "apps", "education", "plan-logo"})


def is_auth_path(path: str) -> bool:
    parts = path.strip("/").split("/")
    return len(parts) >= 2 and parts[1] == "auth"


def http_error(request: Request, status: int) -> Response:
    """An address under `/{env}/auth/` that nothing answers, or a method it refuses: a member page's readable
    message where a person is, else the RFC 6749 §5.2 error body an app's OAuth library understands."""
    parts = request.url.path.strip("/").split("/")
    method, path = request.method, request.url.path
    if len(parts) >= 3 and parts[2] in _MEMBER_PAGES:
        page = MemberPage(request, request.app.state.auth, parts[0])
        if status == 404:
            return page.not_found()
        return page.message("That did not work", f"This page does not answer a {method} request.", status)
    description = f"There is no endpoint at {path}" if status == 404 else f"{path} does not answer {method}"
    return error_json(InvalidRequestError(description=description, status_code=status))
