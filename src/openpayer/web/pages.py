"""Server-rendered pages (Jinja2, autoescaped) with the security headers every page carries."""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse


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
