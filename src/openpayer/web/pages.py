"""Server-rendered pages (Jinja2, autoescaped) with the security headers every page carries."""

from __future__ import annotations

from functools import cache
from http import HTTPStatus
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response


@cache
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("openpayer", "templates"), autoescape=select_autoescape(default=True)
    )


def page(
    template: str, status: int = 200, *, form_targets: tuple[str, ...] = (), **context: Any
) -> HTMLResponse:
    """Render `template`; `form_targets` are origins a form submission may redirect to (the app's)."""
    html = _templates().get_template(template).render(**context)
    form_action = " ".join(("'self'", *form_targets))
    headers = {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
    }
    return HTMLResponse(html, status_code=status, headers=headers)


def http_error(request: Request, status: int) -> Response:
    """An address outside every area with its own error body (`/`, `/static`, the probes): a readable page
    for a browser, else RFC 9457 problem details."""
    title = HTTPStatus(status).phrase
    if status == 404:
        detail = f"There is nothing at {request.url.path}"
    elif status == 405:
        detail = f"{request.url.path} does not answer {request.method}"
    else:
        detail = title
    if "text/html" in request.headers.get("accept", ""):
        return page("http_error.html", status, heading=title, text=detail)
    problem = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return JSONResponse(problem, status_code=status, media_type="application/problem+json")
