"""Security headers on every response, as plain ASGI (no BaseHTTPMiddleware on the hot path).

- Always: `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`, and a
  `Content-Security-Policy` unless the response brings its own (the sign-in and consent pages do): pages get
  `PAGE_CSP` (nothing from another origin, no framing), everything else `API_CSP` (nothing at all may load
  from a JSON answer rendered in a browser).
- Over HTTPS (the request's scheme, which `TrustedProxies` sets from the proxy's `X-Forwarded-Proto`, or a
  `https://` public base URL): `Strict-Transport-Security`. Over plain HTTP a browser ignores it anyway,
  and a developer's `http://127.0.0.1` is not pinned to HTTPS by accident.
- Member data (`member_data`: Patient Access FHIR answers, the token, introspection, userinfo and authorize
  endpoints) gets `Cache-Control: no-store` and `Pragma: no-cache`, replacing any other cache directive:
  no shared or browser cache may keep it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HSTS = b"max-age=31536000"
PAGE_CSP = (
    b"default-src 'self'; img-src 'self'; style-src 'self'; form-action 'self'; "
    b"frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
_AUTH_MEMBER_DATA = frozenset({"token", "introspect", "userinfo", "authorize"})
_FHIR_PUBLIC = frozenset({"metadata", ".well-known"})


def member_data(path: str) -> bool:
    """Whether answers on `path` can carry member data: `/{env}/fhir/...` (but the CapabilityStatement and
    SMART discovery) and the authorization server's token, introspection, userinfo and authorize endpoints."""
    parts = path.strip("/").split("/")
    if len(parts) < 2:
        return False
    if parts[1] == "fhir":
        return len(parts) == 2 or parts[2] not in _FHIR_PUBLIC
    return parts[1] == "auth" and len(parts) >= 3 and parts[2] in _AUTH_MEMBER_DATA


class SecurityHeaders:
    def __init__(
        self,
        app: ASGIApp,
        *,
        https_origin: bool = False,
        member_data: Callable[[str], bool] = member_data,
    ) -> None:
        """`https_origin`: the public base URL is `https://` (HSTS on every response, whatever the hop)."""
        self.app = app
        self.https_origin = https_origin
        self.member_data = member_data

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = self.https_origin or scope.get("scheme") == "https"
        no_store = self.member_data(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._headers(list(message.get("headers", ())), https, no_store)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    def _headers(
        headers: list[tuple[bytes, bytes]], https: bool, no_store: bool
    ) -> list[tuple[bytes, bytes]]:
        if no_store:
            headers = [(k, v) for k, v in headers if k.lower() not in (b"cache-control", b"pragma")]
            headers += [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
        present = {k.lower() for k, _ in headers}
        headers += [(k, v) for k, v in _ALWAYS if k not in present]
        if b"content-security-policy" not in present:
            content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
            policy = PAGE_CSP if content_type.startswith(b"text/html") else API_CSP
            headers.append((b"content-security-policy", policy))
        if https and b"strict-transport-security" not in present:
            headers.append((b"strict-transport-security", HSTS))
        return headers
