"""CSRF protection for every form (double submit).

A random `op_csrf` cookie and the same value in the form's `csrf_token` field, compared in constant time; a
cross-site page can neither read the cookie nor set it. The page that renders a form sets the cookie with
`openpayer.web.cookies.set_cookie`.
"""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request

CSRF_COOKIE = "op_csrf"


def csrf_token(request: Request) -> str:
    """The request's CSRF token (from its cookie), or a new one for the page to set as the cookie."""
    existing = request.cookies.get(CSRF_COOKIE, "")
    return existing if len(existing) >= 32 else secrets.token_urlsafe(32)


def csrf_ok(request: Request, submitted: str | None) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(cookie) and bool(submitted) and hmac.compare_digest(cookie, submitted or "")
