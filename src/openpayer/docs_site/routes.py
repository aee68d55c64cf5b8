"""`/docs/`: the developer guides as pages, the interactive API console per FHIR base, and the OpenAPI index.

Everything a page needs is served from the package (templates here, CSS and the console's script under
`openpayer/static/docs/`): no CDN, so the pages work offline and under a strict Content-Security-Policy.
FastAPI's Swagger UI (which loads from a CDN) is replaced by a server-rendered list of the OpenAPI
operations beside `/openapi.json`: the FHIR routes are generic (`/{env}/fhir/{type}`), so the console,
generated from each base's CapabilityStatement, is the place to try calls.

Consoles: `/docs/console/{env}/{fhir|directory}`; `?client_id=` pre-fills the sign-in form (the portal links
a developer's sandbox app this way). `/docs/console/callback` is the console's redirect URI for every
environment: the script remembers which console started the sign-in.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from openpayer.api.context import origin_of
from openpayer.docs_site.markdown import GUIDES, rendered_guide

if TYPE_CHECKING:
    from openpayer.api.service import FhirApi

CALLBACK_PATH = "/docs/console/callback"
KINDS = {"fhir": "Patient Access", "directory": "Provider Directory and Formulary"}
DEFAULT_SCOPE = "launch/patient openid fhirUser patient/*.rs"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")
_METHODS = ("get", "post", "put", "patch", "delete")

router = APIRouter(include_in_schema=False)


@cache
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("openpayer.docs_site", "templates"),
        autoescape=select_autoescape(default=True),
    )


def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A docs page with its security headers: scripts, styles and calls only to this origin."""
    html = _templates().get_template(template).render(**context)
    headers = {
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }
    return HTMLResponse(html, status_code=status, headers=headers)


def _services(request: Request) -> FhirApi:
    services: FhirApi = request.app.state.fhir_api
    return services


def _not_found(request: Request, what: str) -> HTMLResponse:
    return _page("docs_not_found.html", 404, what=what, environments=_services(request).settings.environments)


def is_docs_path(path: str) -> bool:
    return path == "/docs" or path.startswith("/docs/")


def http_error(request: Request, status: int) -> HTMLResponse:
    """The docs site's own page for an address under `/docs` that nothing answers, or a method it refuses."""
    if status == 404:
        return _not_found(request, request.url.path)
    return _page("docs_refused.html", status, method=request.method, what=request.url.path)


@router.get("/docs")
def docs_root() -> Response:
    return RedirectResponse("/docs/", status_code=308)


@router.get("/docs/")
def docs_index(request: Request) -> HTMLResponse:
    guides = [rendered_guide(g.slug) for g in GUIDES]
    return _page(
        "docs_index.html",
        guides=[g for g in guides if g is not None],
        environments=_services(request).settings.environments,
        kinds=KINDS,
        callback=origin_of(request, _services(request)) + CALLBACK_PATH,
    )


@router.get("/docs/api")
def openapi_index(request: Request) -> HTMLResponse:
    schema = request.app.openapi()
    operations = [
        {"method": method.upper(), "path": path, "summary": op.get("summary", "")}
        for path, item in sorted(schema.get("paths", {}).items())
        for method, op in item.items()
        if method in _METHODS
    ]
    return _page("docs_openapi.html", operations=operations, title=schema["info"]["title"])


@router.get(CALLBACK_PATH)
def console_callback(request: Request) -> HTMLResponse:
    """The console's redirect URI: the console script finishes the sign-in and shows the base it started."""
    return _console(request, env="", kind="fhir")


@router.get("/docs/console/{env}/{kind}")
def console(request: Request, env: str, kind: str) -> HTMLResponse:
    if env not in _services(request).settings.environments or kind not in KINDS:
        return _not_found(request, f"/docs/console/{env}/{kind}")
    return _console(request, env=env, kind=kind)


@router.get("/docs/{slug}")
def guide_page(request: Request, slug: str) -> HTMLResponse:
    guide = rendered_guide(slug)
    if guide is None:
        return _not_found(request, f"/docs/{slug}")
    return _page("docs_guide.html", guide=guide, guides=GUIDES)


def _console(request: Request, *, env: str, kind: str) -> HTMLResponse:
    origin = origin_of(request, _services(request))
    client_id = request.query_params.get("client_id", "")
    return _page(
        "docs_console.html",
        env=env,
        kind=kind,
        kind_label=KINDS[kind],
        origin=origin,
        redirect_uri=origin + CALLBACK_PATH,
        client_id=client_id if _CLIENT_ID.match(client_id) else "",
        scope=DEFAULT_SCOPE,
        environments=_services(request).settings.environments,
        kinds=KINDS,
    )
