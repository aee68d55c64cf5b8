"""CSRF protection for every form (double submit).

A random `op_csrf` cookie and the same value in the form's `csrf_token` field, compared in constant time; a
cross-site page can neither read the cookie nor set it. The page that renders a form sets the cookie with
`openpayer.web.cookies.set_cookie`.
"""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

CSRF_COOKIE = "op_csrf"


HOST_CSRF_COOKIE = "__Host-" + CSRF_COOKIE


def csrf_cookie_name(secure: bool) -> str:
    """Over HTTPS `__Host-op_csrf` (Secure, `Path=/`, no Domain): a sibling subdomain or a plain-HTTP page
    cannot plant one (RFC 6265bis §4.1.3.2), so only this origin's own value is ever compared."""
    return HOST_CSRF_COOKIE if secure else CSRF_COOKIE


def csrf_token(request: Request, *, secure: bool) -> str:
    """The request's CSRF token (from its cookie), or a new one for the page to set as the cookie."""
    existing = request.cookies.get(csrf_cookie_name(secure), "")
    return existing if len(existing) >= 32 else secrets.token_urlsafe(32)


def csrf_ok(request: Request, submitted: str | None, *, secure: bool) -> bool:
    cookie = request.cookies.get(csrf_cookie_name(secure), "")
    return bool(cookie) and bool(submitted) and hmac.compare_digest(cookie, submitted or "")


def set_csrf_cookie(response: Response, env: str, value: str, *, secure: bool) -> None:
    """Over HTTPS the `__Host-` cookie, which must be Secure with `Path=/`; else scoped to the env's pages."""
    response.set_cookie(
        csrf_cookie_name(secure),
        value,
        path="/" if secure else f"/{env}/auth",
        secure=secure,
        httponly=True,
        samesite="lax",
    )
