"""Member sign-in sessions, CSRF tokens and signed hand-offs between the sign-in and consent pages.

- Session: an itsdangerous-signed cookie `op_member` (member id, auth time) scoped to `/{env}/auth`,
  `HttpOnly`, `SameSite=Lax`, `Secure` except on local plain-HTTP development hosts.
- CSRF: double submit. A random `op_csrf` cookie and the same value in every form's `csrf_token` field,
  compared in constant time; a cross-site page can neither read the cookie nor set it. Over HTTPS the
  cookie is `__Host-op_csrf` (Secure, `Path=/`, no Domain): a sibling subdomain or a plain-HTTP page
  cannot plant one (RFC 6265bis §4.1.3.2), so only this origin's own value is ever compared.
- The validated authorization request travels in a signed `auth_request` field, so nothing is trusted
  from the form that the authorize endpoint did not check.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "op_member"
CSRF_COOKIE = "op_csrf"
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "testserver")


class Signer:
    def __init__(self, secret: str) -> None:
        self._secret = secret

    def dumps(self, purpose: str, data: Any) -> str:
        return URLSafeTimedSerializer(self._secret, salt=f"openpayer.{purpose}").dumps(data)

    def loads(self, purpose: str, token: str, max_age: int) -> Any | None:
        try:
            return URLSafeTimedSerializer(self._secret, salt=f"openpayer.{purpose}").loads(
                token, max_age=max_age
            )
        except BadSignature:
            return None


def cookie_secure(request: Request, configured: bool | None) -> bool:
    if configured is not None:
        return configured
    return not (request.url.scheme == "http" and (request.url.hostname or "") in _LOCAL_HOSTS)


HOST_CSRF_COOKIE = "__Host-" + CSRF_COOKIE


def csrf_cookie_name(secure: bool) -> str:
    return HOST_CSRF_COOKIE if secure else CSRF_COOKIE


def csrf_token(request: Request, *, secure: bool) -> str:
    """The request's CSRF token (from its cookie), or a new one that `set_csrf_cookie` will send."""
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


def set_cookie(
    response: Response,
    request: Request,
    env: str,
    name: str,
    value: str,
    *,
    secure: bool,
    max_age: int | None = None,
) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=f"/{env}/auth", secure=secure, httponly=True, samesite="lax"
    )
