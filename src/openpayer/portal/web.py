"""Page plumbing for `/portal/` and `/admin/`: signed session cookies, CSRF, rendering, the client address.

- Session: a cookie signed by the accounts domain's `Signer` (the members' sessions' too; `op_portal` on
  `/portal`, `op_admin` on `/admin`), `HttpOnly`,
  `SameSite=Lax`, `Secure` except on plain-http loopback development hosts. It holds the account id, the time
  of sign-in, the time of the last page view, whether the second factor was passed and the account's session
  generation (raised by a password reset or "sign out everywhere", which ends every session at once). It
  lapses after `portal_session_idle` seconds without a page view (each view renews it) and
  `portal_session_max_age` after sign-in, whatever the activity (NIST SP 800-63B §4.2.3 for AAL2: 30 minutes
  idle, 12 hours), both measured on the platform clock.
- CSRF: double submit. A random `op_csrf` cookie on the same path and the same value in each form's
  `csrf_token` field, compared in constant time. Every state-changing request is a POST that checks it.
- Pages carry the security headers of the member pages (CSP without inline script or style, no framing,
  no referrer, no caching).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from openpayer.accounts.sessions import Signer
from openpayer.clock import Clock as SystemClock
from openpayer.portal.interfaces import Clock
from openpayer.web.pages import page

CSRF_COOKIE = "op_csrf"
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "testserver")


@dataclass(frozen=True, slots=True)
class Session:
    account_id: int
    signed_in_at: int
    mfa: bool  # the second factor was passed in this session
    generation: int = 0  # the account's session generation when it signed in


class Area:
    """One signed-in area (`/portal` for developers, `/admin` for staff) with its own cookie and lifetimes."""

    def __init__(
        self,
        path: str,
        cookie: str,
        secret_key: str,
        *,
        idle: int,
        max_age: int,
        secure: bool | None,
        clock: Clock | None = None,
    ) -> None:
        self.path = path
        self.clock: Clock = clock or SystemClock()
        self.cookie = cookie
        self.idle = idle
        self.max_age = max_age
        self.secure = secure
        self._signer = Signer(secret_key)
        self._purpose = f"session{path}"

    def session(self, request: Request, now: int) -> Session | None:
        raw = request.cookies.get(self.cookie)
        if not raw:
            return None
        data = self._signer.loads(self._purpose, raw, self.max_age)
        if not isinstance(data, dict) or now - int(data.get("t", 0)) > self.max_age:
            return None
        if now - int(data.get("s") or data.get("t") or 0) > self.idle:
            return None
        return Session(int(data["a"]), int(data["t"]), bool(data.get("m")), int(data.get("g", 0)))

    def start(self, response: Response, request: Request, session: Session) -> None:
        value = self._signer.dumps(
            self._purpose,
            {
                "a": session.account_id,
                "t": session.signed_in_at,
                "s": self.clock.now(),  # the last page view: the idle timeout counts from here
                "m": session.mfa,
                "g": session.generation,
            },
        )
        response.set_cookie(
            self.cookie,
            value,
            max_age=self.idle,
            path=self.path,
            secure=self._secure(request),
            httponly=True,
            samesite="lax",
        )

    def end(self, response: Response, request: Request) -> None:
        response.delete_cookie(self.cookie, path=self.path, secure=self._secure(request), httponly=True)

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        """A page with a CSRF token for its forms (the cookie is set when the request had none)."""
        token = request.cookies.get(CSRF_COOKIE, "")
        fresh = len(token) < 32
        if fresh:
            token = secrets.token_urlsafe(32)
        response = page(template, status, csrf_token=token, area=self.path, **context)
        if fresh:
            response.set_cookie(
                CSRF_COOKIE,
                token,
                path=self.path,
                secure=self._secure(request),
                httponly=True,
                samesite="lax",
            )
        session = context.get("session")
        if isinstance(session, Session):
            self.start(response, request, session)  # renew the idle timer on every page view
        return response

    def _secure(self, request: Request) -> bool:
        if self.secure is not None:
            return self.secure
        return not (request.url.scheme == "http" and (request.url.hostname or "") in _LOCAL_HOSTS)


def csrf_ok(request: Request, submitted: object) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(cookie) and isinstance(submitted, str) and hmac.compare_digest(cookie, submitted)


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def redirect(url: str) -> RedirectResponse:
    """After a POST: 303 so that the browser follows with a GET."""
    return RedirectResponse(url, status_code=303)
