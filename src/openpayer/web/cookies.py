"""Cookies set by pages: `HttpOnly`, `SameSite=Lax`, scoped to one path, and `Secure` except on local
plain-HTTP development hosts (or as `OPENPAYER_AUTH_COOKIE_SECURE` says)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "testserver")


def cookie_secure(request: Request, configured: bool | None) -> bool:
    if configured is not None:
        return configured
    return not (request.url.scheme == "http" and (request.url.hostname or "") in _LOCAL_HOSTS)


def set_cookie(
    response: Response,
    name: str,
    value: str,
    *,
    path: str,
    secure: bool,
    max_age: int | None = None,
) -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, secure=secure, httponly=True, samesite="lax")
