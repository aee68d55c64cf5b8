"""CORS (the Fetch standard's protocol) for the routes that browser apps call.

A `policy` says, per request, whether the route takes part in CORS and which origin it allows: preflights
(`OPTIONS` with `Access-Control-Request-Method`) are answered here, and the allowed origin is added to
every response of a request the policy admits, errors included. What is allowed where is the policy's (the
SMART server's is `openpayer.oauth.cors`); this module only speaks the protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

EXPOSED = b"Location, ETag, Content-Location, WWW-Authenticate"


@dataclass(frozen=True, slots=True)
class CorsRule:
    """A route that takes part in CORS; `allow` is the origin to allow (`*` or the request's `Origin`), or
    None to answer preflights without allowing anything."""

    allow: str | None


Policy = Callable[[Scope], CorsRule | None]  # None: not a CORS route, the request passes untouched


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class CorsMiddleware:
    def __init__(self, app: ASGIApp, *, policy: Policy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rule = self.policy(scope) if scope["type"] == "http" else None
        if rule is None:
            await self.app(scope, receive, send)
            return
        allow = rule.allow
        if scope["method"] == "OPTIONS" and header(scope, b"access-control-request-method"):
            headers = [(b"vary", b"Origin")]
            if allow:
                headers += [
                    (b"access-control-allow-origin", allow.encode()),
                    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                    (b"access-control-allow-headers", b"Authorization, Content-Type, Accept, Prefer"),
                    (b"access-control-max-age", b"600"),
                ]
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        if allow is None:
            await self.app(scope, receive, send)
            return
        allowed = allow.encode()

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"access-control-allow-origin", allowed),
                    (b"access-control-expose-headers", EXPOSED),
                    (b"vary", b"Origin"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_cors)
